/**
 * Which model an OpenAI-route request runs on. The tenant chooses: its `model`, unless the caller
 * names one the tenant lets callers pick (`model`, `fallback_model`, `allowed_models`).
 */
import { AppError } from "../errors";
import type { TenantConfig } from "../tenants/config";

/** A model this tenant's callers may not name; OpenAI's clients know it as `model_not_found`. */
export class ModelNotAllowed extends AppError {
  readonly openAi = { param: "model", code: "model_not_found" } as const;

  constructor(model: string, allowed: readonly string[]) {
    const message = `The model \`${model}\` is not available to this tenant; allowed: ${allowed.join(", ")}`;
    super("VALIDATION_FAILED", message, { details: [{ path: "model", message: "model not allowed" }] });
  }
}

/** GET /v1/models/{model} for a model this key may not name: OpenAI's 404 `model_not_found`. */
export class ModelNotFound extends AppError {
  readonly openAi = { param: "model", code: "model_not_found" } as const;

  constructor(model: string) {
    super("NOT_FOUND", `The model \`${model}\` does not exist or this key may not use it`);
  }
}

/** The models a caller may name: the tenant's model, its fallback, then its allowed_models. */
export function allowedModels(tenant: TenantConfig): string[] {
  // A config Redis cached before the allowed_models column existed has no such field.
  const extra = tenant.allowedModels ?? [];
  return [...new Set([tenant.model, tenant.fallbackModel ?? "", ...extra].filter(Boolean))];
}

/**
 * The model the caller pins, checked against what the tenant allows: undefined when it names none
 * or the tenant's own (the tenant's model then applies, or an experiment's override of it).
 * `tenant` is the config before experiments: what callers may name does not depend on a variant.
 */
export function pinnedModel(tenant: TenantConfig, requested: string | undefined): string | undefined {
  if (requested === undefined || requested === tenant.model) return undefined;
  const allowed = allowedModels(tenant);
  if (!allowed.includes(requested)) throw new ModelNotAllowed(requested, allowed);
  return requested;
}
