import { UserError } from '../errors.js';
import { flagOf } from '../flag.js';
import { learningRate, type ScheduleSettings } from './schedule.js';

/**
 * The optimizers, with PyTorch's torch.optim as the reference (docs/optimizers.md), and the
 * constants of one step's update. The per-element arithmetic is `updateParams` in src/kernels/reference.ts;
 * the fused kernels read the constants from an update descriptor in shared memory (UPDATE_WORDS words) that
 * the coordinator writes before each step, so every thread applies the same step whichever parameters it
 * takes.
 */
export const OPTIMIZERS = ['sgd', 'momentum', 'nesterov', 'adam', 'adamw'] as const;
export type OptimizerName = (typeof OPTIMIZERS)[number];

export interface OptimizerSettings extends ScheduleSettings {
  optimizer: OptimizerName;
  /** momentum, nesterov: the momentum factor (--momentum). */
  momentum?: number;
  /** adam, adamw (--beta1, --beta2, --eps). */
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** L2 penalty added to the gradient (sgd, momentum, nesterov, adam) or decoupled decay (adamw). */
  weightDecay: number;
}

/** Plain SGD at a constant rate: the textbook's step (and what a run without optimizer settings does). */
export function sgdSettings(lr: number): OptimizerSettings {
  return { optimizer: 'sgd', lr, weightDecay: 0, lrSchedule: 'constant', warmupSteps: 0, epochs: 1 };
}

/** The rule codes of the update descriptor; the AssemblyScript kernels use the same numbers. */
export enum UpdateRule {
  Sgd = 0,
  Momentum = 1,
  Nesterov = 2,
  Adam = 3,
  AdamW = 4,
}

/** The arrays of optimizer state each parameter has (momentum buffer; Adam's two moments). */
export function stateArrays(optimizer: OptimizerName): number {
  return ruleStateArrays(RULES[optimizer]);
}

export function ruleStateArrays(rule: UpdateRule): number {
  return rule === UpdateRule.Sgd ? 0 : rule === UpdateRule.Momentum || rule === UpdateRule.Nesterov ? 1 : 2;
}

/** One step's update, every value a float32 except `rule`. */
export interface UpdateStep {
  rule: UpdateRule;
  /** The step's learning rate. */
  lr: number;
  weightDecay: number;
  /** momentum and nesterov: μ; adam and adamw: β1. */
  beta1: number;
  /** adam, adamw: 1 − β1, β2, 1 − β2, eps. */
  oneMinusBeta1: number;
  beta2: number;
  oneMinusBeta2: number;
  eps: number;
  /** adam, adamw: lr / (1 − β1^t), with t = step + 1. */
  stepSize: number;
  /** adam, adamw: 1 / √(1 − β2^t). */
  invSqrtBias2: number;
  /** adamw: 1 − lr·weightDecay. */
  decay: number;
}

const RULES: Record<OptimizerName, UpdateRule> = {
  sgd: UpdateRule.Sgd,
  momentum: UpdateRule.Momentum,
  nesterov: UpdateRule.Nesterov,
  adam: UpdateRule.Adam,
  adamw: UpdateRule.AdamW,
};

const f = Math.fround;

/**
 * The update of the step with 0-based index `step`: a pure function of the index and the settings. The
 * scalars are computed in float64 from the flags' values and rounded once to float32, as PyTorch computes
 * its Python-float scalars before they meet float32 tensors.
 */
export function updateStep(s: OptimizerSettings, stepsPerEpoch: number, step: number): UpdateStep {
  const lr = learningRate(s, stepsPerEpoch, step);
  const t = step + 1;
  const adam = s.optimizer === 'adam' || s.optimizer === 'adamw';
  const beta1 = adam ? (s.beta1 as number) : (s.momentum ?? 0);
  const beta2 = s.beta2 ?? 0;
  return {
    rule: RULES[s.optimizer],
    lr: f(lr),
    weightDecay: f(s.weightDecay),
    beta1: f(beta1),
    oneMinusBeta1: f(1 - beta1),
    beta2: f(beta2),
    oneMinusBeta2: f(1 - beta2),
    eps: f(s.eps ?? 0),
    stepSize: adam ? f(lr / (1 - beta1 ** t)) : 0,
    invSqrtBias2: adam ? f(1 / Math.sqrt(1 - beta2 ** t)) : 0,
    decay: f(1 - lr * s.weightDecay),
  };
}

/**
 * The update descriptor, UPDATE_WORDS 32-bit words: [0] the rule (i32), [1] and [2] the byte distance from
 * a parameter to its first and second state value (i32; the state arrays are laid out like the parameters),
 * then from word 3 the float32 constants in FLOAT_FIELDS' order. src/kernels/assembly/index.ts reads the
 * same layout (its U_* byte offsets).
 */
export const UPDATE_WORDS = 16;
export const UpdateWord = { Rule: 0, State1: 1, State2: 2, FirstFloat: 3 } as const;
const FLOAT_FIELDS = [
  'lr',
  'weightDecay',
  'beta1',
  'oneMinusBeta1',
  'beta2',
  'oneMinusBeta2',
  'eps',
  'stepSize',
  'invSqrtBias2',
  'decay',
] as const satisfies readonly (keyof UpdateStep)[];

/**
 * Writes a step's update into a descriptor, a view of UPDATE_WORDS floats in the memory that holds `params`
 * and `state` (the state arrays one after another, each laid out like params).
 */
export function writeUpdate(desc: Float32Array, u: UpdateStep, params: Float32Array, state: Float32Array): void {
  const arrays = state.length / params.length;
  const state1Bytes = arrays >= 1 ? state.byteOffset - params.byteOffset : 0;
  const ints = new Int32Array(desc.buffer, desc.byteOffset, UPDATE_WORDS);
  ints[UpdateWord.Rule] = u.rule;
  ints[UpdateWord.State1] = state1Bytes;
  ints[UpdateWord.State2] = arrays >= 2 ? state1Bytes + params.byteLength : 0;
  FLOAT_FIELDS.forEach((field, i) => (desc[UpdateWord.FirstFloat + i] = u[field]));
}

/** A descriptor read back: the step and where the state lies relative to each parameter. */
export function readUpdate(desc: Float32Array): { step: UpdateStep; state1Bytes: number; state2Bytes: number } {
  const ints = new Int32Array(desc.buffer, desc.byteOffset, UPDATE_WORDS);
  const step = { rule: ints[UpdateWord.Rule] } as UpdateStep;
  FLOAT_FIELDS.forEach((field, i) => (step[field] = desc[UpdateWord.FirstFloat + i]));
  return { step, state1Bytes: ints[UpdateWord.State1], state2Bytes: ints[UpdateWord.State2] };
}

/** The options of the optimizer and its schedule (the option table's optimizer group). */
export const OPTIMIZER_OPTIONS = [
  'optimizer',
  'momentum',
  'beta1',
  'beta2',
  'eps',
  'weightDecay',
  'lrSchedule',
  'lrGamma',
  'lrStepEpochs',
  'warmupSteps',
] as const;
export type OptimizerOption = (typeof OPTIMIZER_OPTIONS)[number];

/** The rate when --lr is not given: the textbook's 0.5 for the SGD family, PyTorch's default 0.001 for Adam. */
export function defaultLr(optimizer: OptimizerName): number {
  return optimizer === 'adam' || optimizer === 'adamw' ? 0.001 : 0.5;
}

/** The settings every run has, whatever its optimizer and schedule (the others belong to one of them). */
export const OPTIMIZER_DEFAULTS = { optimizer: 'sgd', weightDecay: 0, lrSchedule: 'constant', warmupSteps: 0 } as const;

/**
 * Checks a run's optimizer and schedule settings, naming the flag, and fills in the defaults of the settings
 * that belong to its optimizer and schedule (PyTorch's: momentum 0.9 as commonly given, betas (0.9, 0.999),
 * eps 1e-8, gamma 0.1). A setting given for another optimizer or schedule is refused, not ignored. The
 * option table's checks (src/options/check.ts: the choices, the integers' ranges) have run before.
 */
export function resolveOptimizer(s: OptimizerSettings): void {
  const shown = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v) : String(v));
  const fail = (key: OptimizerOption, why: string): never => {
    throw new UserError(`${flagOf(key)} ${shown(s[key])}: ${why}`);
  };
  const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
  const withMomentum = s.optimizer === 'momentum' || s.optimizer === 'nesterov';
  const adam = s.optimizer === 'adam' || s.optimizer === 'adamw';
  const onlyWith = (key: OptimizerOption, applies: boolean, owner: string, current: string) => {
    if (s[key] !== undefined && !applies) fail(key, `only with ${owner} (this run has ${current})`);
  };
  const optimizer = `--optimizer ${s.optimizer}`;
  const schedule = `--lr-schedule ${s.lrSchedule}`;
  onlyWith('momentum', withMomentum, '--optimizer momentum or nesterov', optimizer);
  for (const key of ['beta1', 'beta2', 'eps'] as const) onlyWith(key, adam, '--optimizer adam or adamw', optimizer);
  onlyWith('lrGamma', s.lrSchedule === 'step', '--lr-schedule step', schedule);
  onlyWith('lrStepEpochs', s.lrSchedule === 'step', '--lr-schedule step', schedule);
  if (!finite(s.weightDecay) || s.weightDecay < 0) fail('weightDecay', 'must be a finite number ≥ 0');
  if (withMomentum) {
    s.momentum ??= 0.9;
    if (!finite(s.momentum) || s.momentum < 0) fail('momentum', 'must be a finite number ≥ 0');
    if (s.optimizer === 'nesterov' && s.momentum === 0) fail('momentum', '--optimizer nesterov needs a momentum > 0');
  }
  if (adam) {
    s.beta1 ??= 0.9;
    s.beta2 ??= 0.999;
    s.eps ??= 1e-8;
    for (const key of ['beta1', 'beta2'] as const) {
      const b = s[key];
      if (!finite(b) || b < 0 || b >= 1) fail(key, 'must be in [0, 1)');
    }
    if (!finite(s.eps) || s.eps <= 0) fail('eps', 'must be a finite number > 0');
  }
  if (s.lrSchedule === 'step') {
    s.lrGamma ??= 0.1;
    if (!finite(s.lrGamma) || s.lrGamma <= 0) fail('lrGamma', 'must be a finite number > 0');
    if (s.lrStepEpochs === undefined) {
      throw new UserError(
        '--lr-schedule step: needs --lr-step-epochs N, the epochs between two multiplications by --lr-gamma',
      );
    }
  }
}

/**
 * A resumed run keeps its optimizer and schedule: `overrides` (the flags given with --resume) may repeat the
 * checkpoint's settings, not change them. A checkpoint from before optimizers has the defaults (plain SGD, a
 * constant rate). Cosine anneals over the run's epochs, so under it --epochs is kept too.
 */
export function checkOptimizerOnResume(
  saved: Partial<OptimizerSettings>,
  overrides: Partial<OptimizerSettings>,
  checkpointPath: string,
): void {
  const kept = (key: OptimizerOption) => saved[key] ?? (OPTIMIZER_DEFAULTS as Partial<OptimizerSettings>)[key];
  for (const key of OPTIMIZER_OPTIONS) {
    const given = overrides[key];
    // A setting the checkpoint's optimizer or schedule does not have is refused by resolveOptimizer.
    if (given === undefined || kept(key) === undefined || given === kept(key)) continue;
    throw new UserError(
      `${flagOf(key)} ${String(given)}: ${checkpointPath} was trained with ${String(kept(key))}; a resumed run keeps it`,
    );
  }
  if (kept('lrSchedule') === 'cosine' && overrides.epochs !== undefined && overrides.epochs !== saved.epochs) {
    throw new UserError(
      `--epochs ${overrides.epochs}: ${checkpointPath} anneals its cosine schedule over ${String(saved.epochs)} epochs; a resumed run keeps them`,
    );
  }
}
