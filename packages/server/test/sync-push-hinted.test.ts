// The whole push suite again, with every record of every push named as never acknowledged (the
// `unacknowledged` hint, wrong for every record the server already holds): merges, idempotence,
// rights and refusals must come out exactly as without the hint.
process.env['FIELDVAULT_TEST_PUSH_HINT'] = 'all';
await import('./sync-push.test.js');
