// The seeded simulation (issue 6 §3) on a fixed set of seeds: random sequences of sign-ups,
// offline and online logins, records with photos and edits, syncs with random servers, admin
// rekeys, server restarts (kill -9 too) and phones killed -9 mid-sync or mid-migration, over 3
// servers, 3 phones (clocks up to two minutes apart) and 5 users, with invariants checked after
// every step and at quiescence. Longer runs: `npm run scenarios -- --seed S --steps N`.
import t from 'tap';
import { formatReport, simulate } from '../src/index.js';

// CI budget: about a minute per seed on this 2-core machine. A seed that ever failed stays here
// with the steps that reproduced it (named after the seed).
const SEEDS = [1, 7] as const;
const STEPS = 20;

for (const seed of SEEDS) {
  t.test(`seed ${seed}, ${STEPS} steps: every invariant holds after every step and at quiescence`, async (t) => {
    const report = await simulate({ seed, steps: STEPS });
    t.same(report.violations, [], formatReport(report, STEPS));
    t.equal(report.steps.length, STEPS, 'every step ran');
    t.ok(report.invariantsChecked > STEPS * 5, `${report.invariantsChecked} invariant checks`);
  });
}

t.test('a seed replays: the same seed chooses the same actions', async (t) => {
  const [a, b] = [await simulate({ seed: 3, steps: 4, quiesce: false }), await simulate({ seed: 3, steps: 4, quiesce: false })];
  t.same(a.violations, [], formatReport(a, 4));
  t.same(
    b.steps.map((s) => s.action),
    a.steps.map((s) => s.action),
  );
});
