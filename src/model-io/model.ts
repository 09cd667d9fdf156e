import { UserError } from '../errors.js';
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

/**
 * Parameters for `layout`: as many as its layers need, each finite. `what` names the parameters ("predict:
 * the model's params"), `where` their owner in the finite check's message ("predict: the model").
 */
export function checkParamsFit(layout: ModelLayout, params: Float32Array, what: string, where: string): void {
  if (params.length !== layout.paramCount)
    throw new UserError(
      `${what} hold ${params.length} floats, but layers ${layout.layers.join('-')} need ${layout.paramCount}`,
    );
  checkFiniteParams(layout, params, where);
}

/**
 * Refuses a parameter that is NaN or infinite, naming it as export names it (`layers.0.weight[out, in]`): the
 * kernels skip zero inputs, so such a weight could go unseen here and poison every other runtime's answer.
 */
export function checkFiniteParams(layout: ModelLayout, params: Float32Array, where: string): void {
  const bad = params.findIndex((v) => !Number.isFinite(v));
  if (bad < 0) return;
  const l = layout.dense.findIndex((layer) => bad < layer.biasOffset + layer.nOut);
  const { nOut, weightOffset, biasOffset } = layout.dense[l];
  const at =
    bad >= biasOffset
      ? `layers.${l}.bias[${bad - biasOffset}]`
      : `layers.${l}.weight[${(bad - weightOffset) % nOut}, ${Math.floor((bad - weightOffset) / nOut)}]`;
  throw new UserError(`${where}: ${at} is ${params[bad]}; a model's parameters must be finite numbers`);
}
