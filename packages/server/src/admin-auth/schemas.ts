import { Type } from '@sinclair/typebox';
import { NodeIdSchema, PasswordInputSchema, UserSummarySchema, UsernameSchema } from '@fieldvault/protocol';
import { TokenSchema } from '../http/schemas.js';

/** A 6-digit TOTP code or a recovery code (`xxxx-xxxx-xxxx-xxxx`, dashes optional). */
export const SecondFactorCodeSchema = Type.String({ minLength: 6, maxLength: 19, pattern: '^([0-9]{6}|[A-Za-z2-7]{4}(-?[A-Za-z2-7]{4}){3})$' });

export const EnrolBodySchema = Type.Object({ username: UsernameSchema, password: PasswordInputSchema }, { additionalProperties: false });

export const EnrolResponseSchema = Type.Object(
  {
    /** Base32 secret for manual entry; shown once (the server keeps it sealed under its KEK). */
    secret: Type.String(),
    /** `otpauth://totp/…` for a QR code. */
    otpauthUri: Type.String(),
    /** As the app shows it: the configured issuer and the server id (`fieldvault server-a`). */
    issuer: Type.String(),
    periodSeconds: Type.Integer(),
    digits: Type.Integer(),
  },
  { additionalProperties: false },
);

export const ConfirmBodySchema = Type.Object(
  { username: UsernameSchema, password: PasswordInputSchema, code: Type.String({ pattern: '^[0-9]{6}$' }) },
  { additionalProperties: false },
);

export const ConsoleSessionSchema = Type.Object(
  {
    token: TokenSchema,
    expiresAt: Type.String(),
    user: UserSummarySchema,
    /**
     * The server's id (as printed at start; not secret: the TOTP issuer names it too). Admins know
     * servers by it rather than by URL: the admin CLI keeps it to name the server it acts on.
     */
    serverId: NodeIdSchema,
  },
  { additionalProperties: false },
);

export const ConfirmResponseSchema = Type.Object(
  {
    /** Single-use codes for when the authenticator is lost; shown once, stored as keyed digests. */
    recoveryCodes: Type.Array(Type.String()),
    /** The confirming code proved the second factor: the first console session comes with it. */
    session: ConsoleSessionSchema,
  },
  { additionalProperties: false },
);

/**
 * `code` may be left out: the answer is then AUTH_TOTP_ENROLMENT_REQUIRED (no authenticator yet) or
 * AUTH_TOTP_REQUIRED (send the code), so a client learns which before it asks the admin for a code.
 */
export const ConsoleLoginBodySchema = Type.Object(
  { username: UsernameSchema, password: PasswordInputSchema, code: Type.Optional(SecondFactorCodeSchema) },
  { additionalProperties: false },
);
