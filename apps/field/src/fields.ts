import { Option, type Command } from 'commander';
import { defaultChildForm, validateAgainstForm, type FieldValue, type FormDefinition, type FormField, FieldvaultError } from '@fieldvault/protocol';

/*
 * Record fields on the command line, generated from the form the SDK validates against (the
 * child form of @fieldvault/protocol): `--name`, `--age`, `--sex`, `--location`, `--caregiver`,
 * `--protection-concerns`, `--notes`, `--flagged` … The CLI only parses the shape of a value
 * (a number, yes/no, a list) and checks the values against the same form before asking for a
 * password, so that a value the form refuses is a usage error naming the option and the values it
 * allows (the SDK checks again when it saves).
 */

export const FORM: FormDefinition = defaultChildForm;

/** `protection_concerns` → `protection-concerns` (the option), and the key commander stores it under. */
function optionName(field: FormField): { flag: string; key: string } {
  const flag = field.name.replaceAll('_', '-');
  return { flag, key: flag.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase()) };
}

function collect(value: string, previous: string[] | undefined): string[] {
  const items = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  return [...(previous ?? []), ...items];
}

function describe(field: FormField): string {
  const label = field.label ?? field.name;
  switch (field.type) {
    case 'number':
      return `${label}${field.min !== undefined && field.max !== undefined ? ` (${field.min}–${field.max})` : ''}`;
    case 'boolean':
      return `${label}: yes or no (alone: yes)`;
    case 'string[]':
      return `${label}: comma-separated, repeatable${field.options === undefined ? '' : ` (${field.options.join(', ')})`}`;
    case 'date':
      return `${label} (YYYY-MM-DD)`;
    default:
      return label;
  }
}

/** Adds one option per form field to `command` (register, edit). */
export function addFieldOptions(command: Command, form: FormDefinition = FORM): Command {
  for (const field of form.fields) {
    const { flag } = optionName(field);
    let option: Option;
    switch (field.type) {
      case 'boolean':
        option = new Option(`--${flag} [yes|no]`, describe(field));
        break;
      case 'string[]':
        option = new Option(`--${flag} <items>`, describe(field)).argParser(collect);
        break;
      case 'number':
        option = new Option(`--${flag} <number>`, describe(field));
        break;
      case 'select':
        option = new Option(`--${flag} <value>`, describe(field)).choices(field.options ?? []);
        break;
      case 'date':
        option = new Option(`--${flag} <date>`, describe(field));
        break;
      default:
        option = new Option(`--${flag} <text>`, describe(field));
    }
    command.addOption(option);
  }
  return command;
}

function usage(flag: string, why: string): FieldvaultError {
  return new FieldvaultError('FIELD_USAGE', { detail: `--${flag}: ${why}` });
}

function parseBoolean(flag: string, raw: unknown): boolean {
  if (raw === true) return true;
  const s = String(raw).toLowerCase();
  if (['yes', 'y', 'true', '1', 'on'].includes(s)) return true;
  if (['no', 'n', 'false', '0', 'off'].includes(s)) return false;
  throw usage(flag, 'yes or no');
}

/** `protection_concerns` → `protection-concerns`: the option of a record field. */
export function optionOf(fieldName: string): string {
  return fieldName.replaceAll('_', '-');
}

/** What a field of the form allows, in words (`a number from 0 to 120`, `one of: female, male`), if the form knows the field. */
export function allowedValuesOf(fieldName: string, form: FormDefinition = FORM): string | undefined {
  const field = form.fields.find((f) => f.name === fieldName);
  if (field === undefined) return undefined;
  const bounds = (min: number | undefined, max: number | undefined, unit: string): string =>
    min !== undefined && max !== undefined ? `from ${min} to ${max}${unit}` : min !== undefined ? `${min}${unit} or more` : max !== undefined ? `up to ${max}${unit}` : '';
  switch (field.type) {
    case 'number':
      return `a number ${bounds(field.min, field.max, '')}`.trim();
    case 'boolean':
      return 'yes or no';
    case 'date':
      return 'a date YYYY-MM-DD';
    case 'select':
      return `one of: ${(field.options ?? []).join(', ')}`;
    case 'string[]': {
      const count = bounds(field.min, field.max, ' items');
      const items = field.options === undefined ? 'text items' : `items from: ${field.options.join(', ')}`;
      return `${items}, comma-separated${count === '' ? '' : `, ${count}`}${field.maxLength === undefined ? '' : `, each at most ${field.maxLength} characters`}`;
    }
    default:
      return field.maxLength === undefined ? 'text' : `text of at most ${field.maxLength} characters`;
  }
}

/**
 * The form's objections to the values given (not to fields left out: `edit` changes some fields
 * only), as a usage error naming the option and what it allows.
 * @throws FIELD_USAGE
 */
function checkAgainstForm(values: Readonly<Record<string, FieldValue>>, form: FormDefinition): void {
  const problem = validateAgainstForm(values, form, { allowUnknown: true }).find((p) => Object.hasOwn(values, p.field));
  if (problem === undefined) return;
  const flag = optionOf(problem.field);
  if (problem.problem === 'required') throw usage(flag, 'this field is required and cannot be cleared (--unset)');
  throw usage(flag, `${problem.message}; allowed: ${allowedValuesOf(problem.field, form) ?? 'see "fieldvault-field help register"'}`);
}

/**
 * The field values given as options, typed and checked against the form; `unset` names fields to
 * clear (null). @throws FIELD_USAGE
 */
export function fieldValuesFrom(options: Readonly<Record<string, unknown>>, unset: readonly string[] = [], form: FormDefinition = FORM): Record<string, FieldValue> {
  const values: Record<string, FieldValue> = {};
  for (const field of form.fields) {
    const { flag, key } = optionName(field);
    const raw = options[key];
    if (raw === undefined) continue;
    switch (field.type) {
      case 'boolean':
        values[field.name] = parseBoolean(flag, raw);
        break;
      case 'number': {
        const n = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : Number.NaN;
        if (!Number.isFinite(n)) throw usage(flag, 'a number');
        values[field.name] = n;
        break;
      }
      case 'string[]':
        values[field.name] = raw as string[];
        break;
      default:
        values[field.name] = String(raw);
    }
  }
  for (const name of unset) {
    const field = form.fields.find((f) => f.name === name || optionName(f).flag === name);
    if (field === undefined) throw new FieldvaultError('FIELD_USAGE', { detail: `--unset: no field "${name}" (fields: ${form.fields.map((f) => optionName(f).flag).join(', ')})` });
    if (Object.hasOwn(values, field.name)) throw new FieldvaultError('FIELD_USAGE', { detail: `--unset ${name} together with --${optionName(field).flag}` });
    values[field.name] = null;
  }
  checkAgainstForm(values, form);
  return values;
}

/**
 * Field values read from a JSON file (`--fields-file`), as the options they stand for, merged into
 * the command's `options`; a null value clears the field (as --unset). Children's details given as
 * options are visible to every local account (`ps`, /proc) while the command runs and stay in the
 * shell's history; a file (or /dev/stdin) is neither (secrets audit C-F3).
 * @throws FIELD_USAGE
 */
export function withFieldsFile(text: string, file: string, options: Readonly<Record<string, unknown>>, form: FormDefinition = FORM): { options: Record<string, unknown>; unset: string[] } {
  const bad = (why: string): FieldvaultError => new FieldvaultError('FIELD_USAGE', { detail: `--fields-file ${file}: ${why}` });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw bad('not JSON (a JSON object such as {"name": "Amina Y.", "age": 7})');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw bad('not a JSON object of field values');
  const merged: Record<string, unknown> = { ...options };
  const unset: string[] = [];
  for (const [name, value] of Object.entries(parsed)) {
    const field = form.fields.find((f) => f.name === name || optionName(f).flag === name);
    if (field === undefined) throw bad(`no field "${name}" (fields: ${form.fields.map((f) => f.name).join(', ')})`);
    const { flag, key } = optionName(field);
    if (merged[key] !== undefined || unset.includes(field.name)) throw bad(`${field.name} is given twice (in the file and as --${flag}, or twice in the file)`);
    if (value === null) {
      unset.push(field.name);
      continue;
    }
    const wrong = (): FieldvaultError => bad(`${field.name}: ${allowedValuesOf(field.name, form) ?? 'a value'}`);
    switch (field.type) {
      case 'boolean':
        if (typeof value !== 'boolean' && typeof value !== 'string') throw wrong();
        merged[key] = value === true ? true : value === false ? 'no' : value;
        break;
      case 'number':
        if (typeof value !== 'number' && typeof value !== 'string') throw wrong();
        merged[key] = String(value);
        break;
      case 'string[]':
        if (typeof value === 'string') merged[key] = collect(value, undefined);
        else if (Array.isArray(value) && value.every((v) => typeof v === 'string')) merged[key] = value;
        else throw wrong();
        break;
      default:
        if (typeof value !== 'string') throw wrong();
        merged[key] = value;
    }
  }
  return { options: merged, unset };
}

/** Display label of a field. */
export function labelOf(name: string, form: FormDefinition = FORM): string {
  return form.fields.find((f) => f.name === name)?.label ?? name;
}

/** Field names in form order, then any others (older or newer forms) alphabetically. */
export function orderedFieldNames(names: Iterable<string>, form: FormDefinition = FORM): string[] {
  const present = new Set(names);
  const known = form.fields.map((f) => f.name).filter((n) => present.has(n));
  const other = [...present].filter((n) => !known.includes(n)).sort();
  return [...known, ...other];
}
