/**
 * A vitest setup file (`test.setupFiles`) that registers dmalab's matchers for every test file,
 * including files that never import dmalab/testing.
 */
import { registerDmaMatchers } from './matchers.js'

registerDmaMatchers()
