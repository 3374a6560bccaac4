import { z } from "@hono/zod-openapi";
import type { ExperimentVariant } from "../db/schema";

/** Experiment names appear in URLs and, joined with commas, in analytics rows: no commas, no slashes. */
export const EXPERIMENT_NAME = /^[a-z0-9][a-z0-9_-]{0,39}$/;
const VARIANT_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/;
const MODEL = /^[A-Za-z0-9@][A-Za-z0-9._:/@-]{0,127}$/;
const SALT = /^[A-Za-z0-9_-]{1,64}$/;
/** Variants per experiment. */
export const MAX_VARIANTS = 10;
/** How far the split may be from summing to 1 (floating point). */
export const SPLIT_TOLERANCE = 1e-9;

/** What a variant may override, with the same bounds as the tenant's own fields. */
export const Overrides = z
  .object({
    system_prompt: z.string().min(1).max(32_000).optional(),
    model: z.string().regex(MODEL, "unknown model name format").optional(),
    temperature: z.number().min(0).max(2).optional(),
    max_tokens: z.number().int().min(1).max(200_000).optional(),
  })
  .strict()
  .openapi("VariantOverrides");

const Variant = z
  .object({
    name: z.string().regex(VARIANT_NAME, "variant names are 1-32 of [A-Za-z0-9_-], starting alphanumeric"),
    overrides: Overrides.default({}),
  })
  .strict()
  .openapi("Variant");

const Variants = z.array(Variant).min(2, "an experiment needs at least two variants").max(MAX_VARIANTS);
const Split = z
  .record(z.string(), z.number().min(0, "each share is in [0, 1]").max(1, "each share is in [0, 1]"))
  .openapi({ example: { control: 0.5, concise: 0.5 } });
const Instant = z.iso.datetime({ offset: true }).nullable();

/** A whole definition, as the cross-field checks see it. */
export interface Definition {
  variants: ExperimentVariant[];
  split: Record<string, number>;
  control: string;
  startsAt: Date | null;
  endsAt: Date | null;
}

/** Everything wrong with a definition across its fields; empty when it is sound. */
export function definitionProblems(d: Definition): { path: string; message: string }[] {
  const problems: { path: string; message: string }[] = [];
  const names = d.variants.map((v) => v.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) problems.push({ path: "variants", message: `variant ${dup} appears twice` });
  const keys = Object.keys(d.split);
  const missing = names.filter((n) => !(n in d.split));
  const extra = keys.filter((k) => !names.includes(k));
  if (missing.length > 0) problems.push({ path: "split", message: `no share for ${missing.join(", ")}` });
  if (extra.length > 0) problems.push({ path: "split", message: `not a variant: ${extra.join(", ")}` });
  const sum = Object.values(d.split).reduce((s, x) => s + x, 0);
  if (!(Math.abs(sum - 1) <= SPLIT_TOLERANCE))
    problems.push({ path: "split", message: `shares must sum to 1 (they sum to ${sum})` });
  if (!names.includes(d.control))
    problems.push({ path: "control", message: `control ${d.control} is not a variant` });
  if (d.startsAt && d.endsAt && d.endsAt.getTime() <= d.startsAt.getTime())
    problems.push({ path: "ends_at", message: "ends_at must be after starts_at" });
  return problems;
}

const dateOf = (s: string | null | undefined) => (s ? new Date(s) : null);

export const ExperimentCreate = z
  .object({
    name: z.string().regex(EXPERIMENT_NAME, "experiment names are 1-40 of [a-z0-9_-], starting [a-z0-9]"),
    description: z.string().max(2_000).default(""),
    variants: Variants,
    split: Split,
    control: z.string().optional().openapi({ description: "The baseline variant; the first one by default" }),
    active: z.boolean().default(true),
    starts_at: Instant.default(null),
    ends_at: Instant.default(null),
    salt: z.string().regex(SALT).optional().openapi({ description: "Hash salt; random by default" }),
  })
  .strict()
  .superRefine((v, ctx) => {
    const problems = definitionProblems({
      variants: v.variants,
      split: v.split,
      control: v.control ?? v.variants[0]?.name ?? "",
      startsAt: dateOf(v.starts_at),
      endsAt: dateOf(v.ends_at),
    });
    for (const p of problems) ctx.addIssue({ code: "custom", path: [p.path], message: p.message });
  })
  .openapi("ExperimentCreate");

/** A change; the merged definition is checked again as a whole before anything is written. */
export const ExperimentPatch = z
  .object({
    description: z.string().max(2_000).optional(),
    variants: Variants.optional(),
    split: Split.optional(),
    control: z.string().optional(),
    active: z.boolean().optional(),
    starts_at: Instant.optional(),
    ends_at: Instant.optional(),
    salt: z.string().regex(SALT).optional(),
  })
  .strict()
  .refine((o) => Object.keys(o).length > 0, "nothing to update")
  .openapi("ExperimentPatch");

export type ExperimentCreateInput = z.infer<typeof ExperimentCreate>;
export type ExperimentPatchInput = z.infer<typeof ExperimentPatch>;

export const Experiment = z
  .object({
    id: z.string(),
    tenant_id: z.string(),
    name: z.string(),
    description: z.string(),
    variants: z.array(z.object({ name: z.string(), overrides: Overrides })),
    split: z.record(z.string(), z.number()),
    control: z.string(),
    salt: z.string(),
    active: z.boolean(),
    status: z.enum(["running", "scheduled", "ended", "inactive"]),
    starts_at: z.string().nullable(),
    ends_at: z.string().nullable(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("Experiment");

export const ExperimentNameParam = z.object({
  name: z
    .string()
    .regex(EXPERIMENT_NAME, "not an experiment name")
    .openapi({ param: { name: "name", in: "path" } }),
});

const Estimate = z.object({ value: z.number(), ci95: z.tuple([z.number(), z.number()]) }).nullable();
const Comparison = z
  .object({
    difference: z.number(),
    relative_lift: z.number().nullable(),
    statistic: z.number(),
    df: z.number().nullable(),
    p_value: z.number(),
  })
  .nullable();

export const Results = z
  .object({
    tenant_id: z.string(),
    experiment: z.string(),
    status: z.enum(["running", "scheduled", "ended", "inactive"]),
    control: z.string(),
    since: z.string().openapi({ description: "Data counts from the experiment's creation" }),
    min_sample_per_arm: z.number(),
    alpha: z.number(),
    analysis: z
      .object({
        randomization_unit: z.literal("user"),
        observation_unit: z.literal("conversation"),
        comparison_variance: z.literal("user_clustered"),
        comparison_test: z.literal("z"),
        interval_variance: z.literal("conversation"),
      })
      .openapi({
        description:
          "vs_control compares per conversation with a user-clustered (CR1) variance and a normal test; the per-variant ci95 intervals treat conversations as independent",
      }),
    variants: z.array(
      z.object({
        name: z.string(),
        control: z.boolean(),
        split: z.number(),
        users: z.number(),
        conversations: z.number(),
        resolution_rate: Estimate,
        escalation_rate: Estimate,
        csat: Estimate.openapi({ description: "Mean of rated conversations" }),
        csat_responses: z.number(),
        cost_per_conversation_usd: Estimate,
        p50_latency_ms: z.number().nullable(),
        vs_control: z
          .object({
            resolution_rate: Comparison,
            escalation_rate: Comparison,
            csat: Comparison,
            cost_per_conversation_usd: Comparison,
          })
          .nullable(),
        verdict: z.enum([
          "control",
          "insufficient_sample",
          "sample_ratio_mismatch",
          "better",
          "worse",
          "no_significant_difference",
        ]),
      }),
    ),
    srm: z
      .object({
        chi_square: z.number().nullable().openapi({ description: "null when infinite" }),
        df: z.number(),
        p_value: z.number(),
        flagged: z.boolean(),
        observed: z.record(z.string(), z.number()),
        expected: z.record(z.string(), z.number()),
      })
      .nullable(),
    unlisted_variants: z
      .array(z.object({ name: z.string(), users: z.number(), conversations: z.number() }))
      .openapi({ description: "Data under variant names the definition no longer has" }),
  })
  .openapi("ExperimentResults");
