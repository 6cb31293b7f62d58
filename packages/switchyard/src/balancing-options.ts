/**
 * The balancing options of the `switchyard` command line, kept apart from cli-options.ts (which spreads
 * them into its option table, aliases and zod schema):
 *
 *  --balancer NAME                      default balancer (alias: uWSGI's --subscription-algo)
 *  --slow-start SECS                    ramp a joining node from 10% to 100% of its weight; 0 = off
 *  --retry-budget-ratio R               retries may add at most R × recent requests (plus the floor)
 *  --retry-budget-min N                 retries per second always allowed (the floor)
 *  --outlier-consecutive-errors N       connect/reset/timeout failures in a row that eject a node; 0 = off
 *  --outlier-consecutive-5xx N          5xx responses in a row that eject a node; 0 = off
 *  --outlier-ejection-time SECS         first ejection period (the n-th lasts n times this)
 *  --outlier-max-ejection-time SECS     longest ejection period
 *  --outlier-max-ejection-percent P     most of a host's nodes ejected at once (beyond: panic, ignore ejection)
 *
 * A subscription's `algo` still chooses per host (first packet of a host, as uWSGI).
 */
import { BALANCER_NAMES, type BalancingOptions, isBalancerName } from '@switchyard/router';
import { z } from 'zod';

export interface BalancingConfig {
  readonly balancer: string;
  /** Seconds; 0 = off. */
  readonly slowStart: number;
  readonly retryBudgetRatio: number;
  readonly retryBudgetMin: number;
  readonly outlierConsecutiveErrors: number;
  readonly outlierConsecutive5xx: number;
  /** Seconds. */
  readonly outlierEjectionTime: number;
  /** Seconds. */
  readonly outlierMaxEjectionTime: number;
  /** 0..100. */
  readonly outlierMaxEjectionPercent: number;
}

interface BalancingOptionSpec {
  readonly type: 'string';
  readonly help: string;
  readonly defaultText?: string;
  readonly value?: string;
}

export const BALANCING_OPTIONS: Readonly<Record<string, BalancingOptionSpec>> = {
  balancer: {
    type: 'string',
    value: 'NAME',
    help: `default balancer: ${BALANCER_NAMES.join(', ')} (alias --subscription-algo)`,
    defaultText: 'wrr',
  },
  'slow-start': {
    type: 'string',
    value: 'SECS',
    help: 'a node joining a serving host ramps from 10% to 100% of its weight over SECS; 0 = off',
    defaultText: '0',
  },
  'retry-budget-ratio': {
    type: 'string',
    value: 'R',
    help: 'retries may add at most R × the requests of the last 10 s (plus --retry-budget-min)',
    defaultText: '0.2',
  },
  'retry-budget-min': {
    type: 'string',
    value: 'N',
    help: 'retries per second always allowed by the retry budget',
    defaultText: '10',
  },
  'outlier-consecutive-errors': {
    type: 'string',
    value: 'N',
    help: 'connect/reset/timeout failures in a row that eject a node; 0 = off',
    defaultText: '5',
  },
  'outlier-consecutive-5xx': {
    type: 'string',
    value: 'N',
    help: '5xx responses in a row that eject a node; 0 = off',
    defaultText: '5',
  },
  'outlier-ejection-time': {
    type: 'string',
    value: 'SECS',
    help: 'first ejection period; the n-th ejection of a node lasts n times this',
    defaultText: '30',
  },
  'outlier-max-ejection-time': { type: 'string', value: 'SECS', help: 'longest ejection period', defaultText: '300' },
  'outlier-max-ejection-percent': {
    type: 'string',
    value: 'P',
    help: 'most of a host’s nodes ejected at once; beyond, ejection is ignored for the host (panic)',
    defaultText: '50',
  },
};

export const BALANCING_ALIASES: Readonly<Record<string, string>> = { 'subscription-algo': 'balancer' };

function number(option: string, min: number, max: number, integer = false) {
  return z
    .string()
    .regex(integer ? /^\d+$/ : /^\d+(\.\d+)?$/, `${option} takes ${integer ? 'a whole number' : 'a number'}`)
    .transform(Number)
    .refine((n) => n >= min && n <= max, `${option} must be between ${min} and ${max}`);
}

export const BALANCING_SCHEMA = {
  balancer: z
    .string()
    .refine(isBalancerName, `--balancer takes one of ${BALANCER_NAMES.join(', ')}`)
    .default('wrr'),
  'slow-start': number('--slow-start', 0, 3600).default(0),
  'retry-budget-ratio': number('--retry-budget-ratio', 0, 10).default(0.2),
  'retry-budget-min': number('--retry-budget-min', 0, 100_000).default(10),
  'outlier-consecutive-errors': number('--outlier-consecutive-errors', 0, 1000, true).default(5),
  'outlier-consecutive-5xx': number('--outlier-consecutive-5xx', 0, 1000, true).default(5),
  'outlier-ejection-time': number('--outlier-ejection-time', 0.001, 86_400).default(30),
  'outlier-max-ejection-time': number('--outlier-max-ejection-time', 0.001, 86_400).default(300),
  'outlier-max-ejection-percent': number('--outlier-max-ejection-percent', 0, 100).default(50),
};

type Parsed = { readonly [K in keyof typeof BALANCING_SCHEMA]: z.output<(typeof BALANCING_SCHEMA)[K]> };

export function balancingConfig(v: Parsed): BalancingConfig {
  return {
    balancer: v.balancer,
    slowStart: v['slow-start'],
    retryBudgetRatio: v['retry-budget-ratio'],
    retryBudgetMin: v['retry-budget-min'],
    outlierConsecutiveErrors: v['outlier-consecutive-errors'],
    outlierConsecutive5xx: v['outlier-consecutive-5xx'],
    outlierEjectionTime: v['outlier-ejection-time'],
    outlierMaxEjectionTime: Math.max(v['outlier-max-ejection-time'], v['outlier-ejection-time']),
    outlierMaxEjectionPercent: v['outlier-max-ejection-percent'],
  };
}

/** The router's BalancingOptions for a config. */
export function routerBalancing(config: BalancingConfig): BalancingOptions {
  return {
    balancer: config.balancer,
    slowStartMs: Math.round(config.slowStart * 1000),
    retryBudget: { ratio: config.retryBudgetRatio, minPerSecond: config.retryBudgetMin },
    outlier: {
      consecutiveErrors: config.outlierConsecutiveErrors,
      consecutive5xx: config.outlierConsecutive5xx,
      baseEjectionMs: Math.round(config.outlierEjectionTime * 1000),
      maxEjectionMs: Math.round(config.outlierMaxEjectionTime * 1000),
      maxEjectionFraction: config.outlierMaxEjectionPercent / 100,
    },
  };
}
