import { Type, type Static } from '@sinclair/typebox';
import { FieldvaultError } from './errors.js';
import { DELETED_FIELD, FIELD_NAME_PATTERN, MAX_FIELDS, MAX_LIST_ITEMS, MAX_VALUE_LENGTH, type FieldValue } from './record.js';
import { checkSchema } from './validate.js';

/** A form id: lowercase, 1–64 characters. */
export const FORM_ID_PATTERN = /^[a-z][a-z0-9_-]{0,63}$/;

export const FORM_FIELD_TYPES = ['string', 'number', 'boolean', 'date', 'select', 'string[]'] as const;
export type FormFieldType = (typeof FORM_FIELD_TYPES)[number];

/**
 * One field of a form. `options` lists the allowed values of a `select` (required) or of the items
 * of a `string[]` (optional). `min`/`max` bound a `number`'s value or a `string[]`'s item count.
 * `maxLength` bounds a `string` or each item of a `string[]` (never above 10 000).
 */
export const FormFieldSchema = Type.Object(
  {
    name: Type.String({ pattern: FIELD_NAME_PATTERN.source }),
    type: Type.Union(FORM_FIELD_TYPES.map((t) => Type.Literal(t))),
    label: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    required: Type.Optional(Type.Boolean()),
    options: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { minItems: 1, maxItems: MAX_LIST_ITEMS }),
    ),
    min: Type.Optional(Type.Number()),
    max: Type.Optional(Type.Number()),
    maxLength: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_VALUE_LENGTH })),
  },
  { additionalProperties: false },
);
export type FormField = Static<typeof FormFieldSchema>;

/** A server-published form: which fields a record may carry and what their values must look like. */
export const FormDefinitionSchema = Type.Object(
  {
    id: Type.String({ pattern: FORM_ID_PATTERN.source }),
    version: Type.Integer({ minimum: 1 }),
    fields: Type.Array(FormFieldSchema, { minItems: 1, maxItems: MAX_FIELDS - 1 }),
  },
  { additionalProperties: false },
);
export type FormDefinition = Static<typeof FormDefinitionSchema>;

function formInvalid(field: string, why: string): FieldvaultError {
  return new FieldvaultError('RECORD_FORM_INVALID', { detail: `${field}: ${why}`, details: { field } });
}

/**
 * Validates an untrusted form definition (schema, unique names, options where needed and only
 * where meaningful, `min` not above `max`) and returns it.
 *
 * @throws RECORD_FORM_INVALID naming the offending field in `detail` (and `details.field`).
 */
export function parseFormDefinition(value: unknown): FormDefinition {
  const form = checkSchema(FormDefinitionSchema, value, 'RECORD_FORM_INVALID');
  const seen = new Set<string>();
  form.fields.forEach((f, i) => {
    const where = `fields.${i}`;
    if (seen.has(f.name)) throw formInvalid(`${where}.name`, `"${f.name}" appears twice`);
    seen.add(f.name);
    if (f.type === 'select' && f.options === undefined) throw formInvalid(`${where}.options`, 'a select needs options');
    if (f.options !== undefined) {
      if (f.type !== 'select' && f.type !== 'string[]') throw formInvalid(`${where}.options`, 'only for select and string[]');
      if (new Set(f.options).size !== f.options.length) throw formInvalid(`${where}.options`, 'options must be unique');
    }
    if ((f.min !== undefined || f.max !== undefined) && f.type !== 'number' && f.type !== 'string[]') {
      throw formInvalid(`${where}.min`, 'min and max only for number and string[]');
    }
    if (f.min !== undefined && f.max !== undefined && f.min > f.max) throw formInvalid(`${where}.min`, 'min is above max');
    if (f.maxLength !== undefined && f.type !== 'string' && f.type !== 'string[]') {
      throw formInvalid(`${where}.maxLength`, 'only for string and string[]');
    }
  });
  return form;
}

export type FormProblemKind = 'required' | 'type' | 'option' | 'range' | 'too_long' | 'text' | 'unknown';

export interface FormProblem {
  /** The record field the problem is about. */
  readonly field: string;
  readonly problem: FormProblemKind;
  /** What is wrong, without echoing the value (it is personal data). */
  readonly message: string;
}

export interface FormCheckOptions {
  /** Accept fields the form does not list (e.g. from an older form version). Default false. */
  readonly allowUnknown?: boolean;
}

const DATE_PATTERN = /^(\d{4})-(\d{2})-(\d{2})$/;

function isCalendarDate(s: string): boolean {
  const m = DATE_PATTERN.exec(s);
  if (m === null) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const t = new Date(Date.UTC(y, mo - 1, d));
  return t.getUTCFullYear() === y && t.getUTCMonth() === mo - 1 && t.getUTCDate() === d;
}

/**
 * Control characters other than tab and line breaks: invisible, they cut a name short in C-string
 * consumers (reports, CSV exports) and make two equal-looking names differ.
 */
const CONTROL_CHARACTER = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/;
/** A high surrogate not followed by a low one, or a low one not preceded by a high one (no `u` flag: code units). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Text a person can read and any UTF-8 consumer keeps as it is: no unpaired surrogate (it turns
 * into U+FFFD in a UTF-8 export, so the record's bytes would no longer be what was written) and
 * no control character but tab, LF and CR. A form rule, not a record-format rule (`parseRecord`):
 * a record stored before the rule stays readable and is still pulled; a new value is held to it,
 * and so is a push of a record still holding such a value (refused naming the field, to correct).
 */
function isReadableText(s: string): boolean {
  return !CONTROL_CHARACTER.test(s) && !LONE_SURROGATE.test(s);
}

const TEXT_MESSAGE = 'must be readable text (no control characters other than tab and line breaks, no unpaired surrogates)';

function isEmpty(value: FieldValue | undefined): boolean {
  return value === undefined || value === null || value === '' || (Array.isArray(value) && value.length === 0);
}

function checkField(f: FormField, value: FieldValue): FormProblem | undefined {
  const problem = (kind: FormProblemKind, message: string): FormProblem => ({ field: f.name, problem: kind, message });
  switch (f.type) {
    case 'string':
      if (typeof value !== 'string') return problem('type', 'must be text');
      if (f.maxLength !== undefined && value.length > f.maxLength) return problem('too_long', `at most ${f.maxLength} characters`);
      if (!isReadableText(value)) return problem('text', TEXT_MESSAGE);
      return undefined;
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value)) return problem('type', 'must be a number');
      if (f.min !== undefined && value < f.min) return problem('range', `must be at least ${f.min}`);
      if (f.max !== undefined && value > f.max) return problem('range', `must be at most ${f.max}`);
      return undefined;
    case 'boolean':
      return typeof value === 'boolean' ? undefined : problem('type', 'must be true or false');
    case 'date':
      return typeof value === 'string' && isCalendarDate(value) ? undefined : problem('type', 'must be a date YYYY-MM-DD');
    case 'select':
      if (typeof value !== 'string') return problem('type', 'must be one of the options');
      return f.options?.includes(value) === true ? undefined : problem('option', 'must be one of the options');
    case 'string[]': {
      if (!Array.isArray(value)) return problem('type', 'must be a list of text');
      const { min, max, maxLength, options } = f;
      if (min !== undefined && value.length < min) return problem('range', `needs at least ${min} items`);
      if (max !== undefined && value.length > max) return problem('range', `allows at most ${max} items`);
      if (maxLength !== undefined && value.some((s) => s.length > maxLength)) {
        return problem('too_long', `each item at most ${maxLength} characters`);
      }
      if (options !== undefined && value.some((s) => !options.includes(s))) {
        return problem('option', 'every item must be one of the options');
      }
      if (!value.every(isReadableText)) return problem('text', `each item ${TEXT_MESSAGE}`);
      return undefined;
    }
  }
}

/**
 * Every way `fields` (a field → value map, e.g. from `visibleFields`) breaks `form`, in form order,
 * then unknown fields sorted by name. An empty list means the values fit. `null` clears an
 * optional field; `_deleted` is not a form field and is ignored.
 */
export function validateAgainstForm(
  fields: Readonly<Record<string, FieldValue>>,
  form: FormDefinition,
  options: FormCheckOptions = {},
): FormProblem[] {
  const problems: FormProblem[] = [];
  const known = new Set<string>();
  for (const f of form.fields) {
    known.add(f.name);
    const value = Object.hasOwn(fields, f.name) ? fields[f.name] : undefined;
    if (isEmpty(value)) {
      if (f.required === true) problems.push({ field: f.name, problem: 'required', message: 'is required' });
      continue;
    }
    const p = checkField(f, value as FieldValue);
    if (p !== undefined) problems.push(p);
  }
  if (options.allowUnknown !== true) {
    for (const name of Object.keys(fields).sort()) {
      if (name !== DELETED_FIELD && !known.has(name)) {
        problems.push({ field: name, problem: 'unknown', message: 'is not a field of this form' });
      }
    }
  }
  return problems;
}

/**
 * Throws when `fields` break `form` (see {@link validateAgainstForm}).
 *
 * @throws RECORD_INVALID naming the first offending field in `detail` and `details.field`, with
 *   `details.problem` and `details.problems` (the count).
 */
export function assertMatchesForm(
  fields: Readonly<Record<string, FieldValue>>,
  form: FormDefinition,
  options: FormCheckOptions = {},
): void {
  const problems = validateAgainstForm(fields, form, options);
  const first = problems[0];
  if (first === undefined) return;
  throw new FieldvaultError('RECORD_INVALID', {
    detail: `${first.field}: ${first.message}`,
    details: { field: first.field, problem: first.problem, problems: problems.length },
  });
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** The built-in child registration form (DESIGN.md §4). Servers may publish their own. */
export const defaultChildForm: FormDefinition = deepFreeze({
  id: 'child',
  version: 1,
  fields: [
    { name: 'name', type: 'string', label: 'Name', required: true, maxLength: 200 },
    { name: 'age', type: 'number', label: 'Age (years)', min: 0, max: 120 },
    { name: 'sex', type: 'select', label: 'Sex', options: ['female', 'male', 'other', 'unknown'] },
    { name: 'location', type: 'string', label: 'Location', maxLength: 1_000 },
    { name: 'caregiver', type: 'string', label: 'Caregiver', maxLength: 1_000 },
    {
      name: 'protection_concerns',
      type: 'string[]',
      label: 'Protection concerns',
      options: [
        'separated',
        'unaccompanied',
        'sexually_exploited',
        'gbv_survivor',
        'trafficked',
        'stateless',
        'detained',
        'migrant',
        'refugee',
        'disabled',
        'serious_health_issue',
        'caafag',
        'street_child',
        'child_mother',
        'abused',
        'child_labour',
        'child_headed_household',
        'mentally_distressed',
        'other',
      ],
    },
    { name: 'notes', type: 'string', label: 'Notes', maxLength: 10_000 },
    { name: 'flagged', type: 'boolean', label: 'Flagged' },
    { name: 'reunited', type: 'boolean', label: 'Reunited' },
    { name: 'investigated', type: 'boolean', label: 'Investigated' },
    { name: 'duplicate', type: 'boolean', label: 'Duplicate' },
    { name: 'verified', type: 'boolean', label: 'Verified' },
  ],
});
