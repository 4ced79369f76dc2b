/** Messages between `createProcessPasswordHasher` and its child (`hasher-child.ts`), over IPC. */
export type HasherChildRequest =
  | { readonly id: number; readonly op: 'hash'; readonly password: string }
  | { readonly id: number; readonly op: 'verify'; readonly digest: string; readonly password: string }
  | { readonly id: number; readonly op: 'verifyDummy'; readonly password: string };

/** A request before the hasher gives it an id. */
export type HasherChildOp =
  | { readonly op: 'hash'; readonly password: string }
  | { readonly op: 'verify'; readonly digest: string; readonly password: string }
  | { readonly op: 'verifyDummy'; readonly password: string };

export type HasherChildResponse =
  | { readonly id: number; readonly ok: true; readonly value: string | boolean | null }
  | { readonly id: number; readonly ok: false };
