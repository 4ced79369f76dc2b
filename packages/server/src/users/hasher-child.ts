// The Argon2id worker process of `createProcessPasswordHasher`. It is started under `nice` so
// that its threads run below the event loop's priority; it answers one request per IPC message
// with the same `createPasswordHasher` the in-process hasher uses. It never logs: requests carry
// passwords.
import type { HasherChildRequest, HasherChildResponse } from './hasher-child-protocol.js';
import { createPasswordHasher, type Argon2Params } from './password-hasher.js';

const params = JSON.parse(process.argv[2] ?? '{}') as Argon2Params;
const hasher = createPasswordHasher(params);

function reply(msg: HasherChildResponse): void {
  process.send?.(msg);
}

async function handle(req: HasherChildRequest): Promise<HasherChildResponse> {
  try {
    switch (req.op) {
      case 'hash':
        return { id: req.id, ok: true, value: await hasher.hash(req.password) };
      case 'verify':
        return { id: req.id, ok: true, value: await hasher.verify(req.digest, req.password) };
      case 'verifyDummy':
        await hasher.verifyDummy(req.password);
        return { id: req.id, ok: true, value: null };
    }
  } catch {
    // The cause may quote its input; only the fact of a failure crosses back.
    return { id: req.id, ok: false };
  }
}

process.on('message', (req: HasherChildRequest) => {
  void handle(req).then(reply);
});
// Never outlive the server: the channel closes when the parent exits or is killed.
process.on('disconnect', () => process.exit(0));
