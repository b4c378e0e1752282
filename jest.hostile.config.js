// The hostile suite (issue 19): real server, real TCP, real PostgreSQL, the real `dcx` CLI under attack and faults.
// `npm run test:hostile` runs the short form (CI); HOSTILE_LONG=1 the long one, which prints the figures README quotes.
import base from './jest.config.js';

const common = { ...base.projects[0] };
delete common.displayName;
delete common.testMatch;

export default {
  testTimeout: process.env.HOSTILE_LONG === '1' ? 1_800_000 : 180_000,
  projects: [{ ...common, displayName: 'hostile', testMatch: ['<rootDir>/test/hostile/**/*.hostile-spec.ts'] }],
};
