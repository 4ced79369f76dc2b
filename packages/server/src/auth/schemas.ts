// The auth wire schemas live in @fieldvault/protocol (shared with the SDK); re-exported for routes.
export {
  ChallengeBodySchema,
  ChallengeResponseSchema,
  LoginBodySchema,
  LoginResponseSchema,
  UsernameSchema,
} from '@fieldvault/protocol';
