import { afterAll, afterEach, beforeEach } from 'vitest';
import { cleanUp, pendingCleanups } from './helpers.js';

// Every test file runs this first (vitest.config.ts setupFiles): what a test makes goes when it ends, pass or fail.
let mark = 0;
beforeEach(() => {
  mark = pendingCleanups();
});
afterEach(() => cleanUp(mark));
afterAll(() => cleanUp());
