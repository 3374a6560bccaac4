/**
 * The API's answers as TypeScript types, inferred from the zod schemas the routes declare and
 * document: the one source for the console, the widget and test expectations. Type-only on
 * purpose (`import type` here and in every importer), so a browser bundle never pulls in zod or
 * server code.
 */
import type { z } from "@hono/zod-openapi";
import type * as admission from "./admission/routes";
import type * as analytics from "./analytics/routes";
import type * as conversations from "./chat/conversation-routes";
import type * as experimentRoutes from "./experiments/routes";
import type * as experiments from "./experiments/schemas";
import type * as inbox from "./inbox/schemas";
import type * as knowledge from "./knowledge/schemas";
import type * as monitoring from "./monitoring/routes";
import type * as rules from "./monitoring/rules";
import type * as openapi from "./openapi";
import type * as operators from "./operators/routes";
import type * as privacy from "./privacy/routes";
import type * as tenants from "./tenants/schemas";
import type * as toolRoutes from "./tools/routes";
import type * as tools from "./tools/schemas";

export type { ErrorCode } from "./errors";

/** `{ error: { code, message, requestId, details? } }`: every refusal but the OpenAI-compatible route's. */
export type ApiErrorBody = z.infer<typeof openapi.ErrorEnvelope>;

export type Tenant = z.infer<typeof tenants.Tenant>;
export type TenantList = z.infer<typeof tenants.TenantList>;
export type PublicConfig = z.infer<typeof tenants.PublicConfig>;
export type ApiKey = z.infer<typeof tenants.ApiKey>;
export type CreatedKey = z.infer<typeof tenants.CreatedKey>;
export type SubjectExport = z.infer<typeof privacy.SubjectExport>;
export type ErasureResult = z.infer<typeof privacy.ErasureResult>;

export type Dashboard = z.infer<typeof analytics.Dashboard>;
export type Usage = z.infer<typeof admission.Usage>;

export type Experiment = z.infer<typeof experiments.Experiment>;
export type ExperimentList = z.infer<typeof experimentRoutes.ExperimentList>;
export type ExperimentResults = z.infer<typeof experiments.Results>;

export type Tool = z.infer<typeof tools.Tool>;
export type ToolWithSecret = z.infer<typeof tools.ToolWithSecret>;
export type ToolList = z.infer<typeof tools.ToolList>;
export type RotatedToolSecret = z.infer<typeof toolRoutes.RotatedToolSecret>;

export type MonitoringMetric = z.infer<typeof monitoring.Metric>;
export type MonitoringVolume = z.infer<typeof monitoring.Volume>;
export type Alert = z.infer<typeof monitoring.Alert>;
export type TenantMonitoring = z.infer<typeof monitoring.TenantMonitoring>;
export type PlatformMonitoring = z.infer<typeof monitoring.PlatformMonitoring>;
export type AlertSettings = z.infer<typeof monitoring.AlertSettings>;
export type AlertEvaluation = z.infer<typeof monitoring.Evaluation>;
export type AlertSettingsRule = AlertSettings["rules"][number];
/** The body of a PUT of alert settings, as a client writes it. */
export type AlertSettingsInput = z.input<typeof rules.AlertSettingsInput>;
/** What a PUT may change of one rule (null in `rules` removes the rule's override). */
export type AlertRuleOverride = NonNullable<NonNullable<AlertSettingsInput["rules"]>[rules.RuleName]>;

export type Conversation = z.infer<typeof conversations.ConversationOut>;
export type StartedConversation = z.infer<typeof conversations.Started>;
export type Transcript = z.infer<typeof conversations.Transcript>;
/** A message's answer: the JSON reply, and the data of the stream's `done` event. */
export type Reply = z.infer<typeof conversations.Reply>;
/** The data of the conversation stream's `tool` event: a tool starting or ending (src/tools/loop.ts). */
export type { ToolFrame } from "./tools/loop";

export type Operator = z.infer<typeof operators.Operator>;
export type InvitedOperator = z.infer<typeof operators.InvitedOperator>;

export type KnowledgeSource = z.infer<typeof knowledge.Source>;
export type KnowledgeSourceList = z.infer<typeof knowledge.SourceList>;
/** A source as a client writes it: a new one (POST) or the whole new content of one (PUT re-indexes). */
export type KnowledgeSourceInput = z.input<typeof knowledge.SourceInput>;
export type KnowledgeSettings = z.infer<typeof knowledge.Settings>;
export type KnowledgeSettingsView = z.infer<typeof knowledge.SettingsView>;
export type KnowledgeSettingsPatch = z.input<typeof knowledge.SettingsPatch>;
export type KnowledgeUnanswered = z.infer<typeof knowledge.Unanswered>;

export type InboxItem = z.infer<typeof inbox.InboxItem>;
export type InboxPage = z.infer<typeof inbox.InboxPage>;
export type InboxConversation = z.infer<typeof inbox.InboxConversation>;
export type InboxEntry = z.infer<typeof inbox.InboxEntry>;
export type { InboxStatus, LiveClientFrame, LiveServerFrame } from "./handoff/types";
