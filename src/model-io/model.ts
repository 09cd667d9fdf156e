import type { ModelInput } from '../data/scaling.js';
import type { ModelLayout } from '../model/layout.js';

/**
 * A trained network: its layers, its parameters and how it reads its inputs (scaling, class names). What
 * train() returns, a run's snapshot, a checkpoint and a model file are each one of these, and more.
 */
export interface Model {
  layout: ModelLayout;
  params: Float32Array;
  input: ModelInput;
}
