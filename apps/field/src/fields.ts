import { Option, type Command } from 'commander';
import { defaultChildForm, type FieldValue, type FormDefinition, type FormField, FieldvaultError } from '@fieldvault/protocol';

/*
 * Record fields on the command line, generated from the form the SDK validates against (the
 * child form of @fieldvault/protocol): `--name`, `--age`, `--sex`, `--location`, `--caregiver`,
 * `--protection-concerns`, `--notes`, `--flagged` … The CLI only parses the shape of a value
 * (a number, yes/no, a list); the SDK checks it against the form and names the field it rejects.
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

/** The field values given as options, typed by the form; `unset` names fields to clear (null). */
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
  return values;
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
