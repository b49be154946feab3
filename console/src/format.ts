import type { Reason, Resources } from "./types";

const num = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(3).replace(/0+$/, "").replace(/\.$/, ""));

export function resources(r: Resources): string {
  return `${num(r.cpu_cores)} CPU · ${num(r.ram_gib)} GiB RAM · ${r.gpu_count} GPU`;
}

/** "2 GPUs, 4 GiB RAM": what is missing. */
export function shortfall(s: Partial<Resources> | undefined): string {
  if (!s) return "";
  const parts: string[] = [];
  if (s.cpu_cores) parts.push(`${num(s.cpu_cores)} CPU ${s.cpu_cores === 1 ? "core" : "cores"}`);
  if (s.ram_gib) parts.push(`${num(s.ram_gib)} GiB RAM`);
  if (s.gpu_count) parts.push(`${s.gpu_count} ${s.gpu_count === 1 ? "GPU" : "GPUs"}`);
  return parts.join(", ");
}

const REASONS: Record<string, string> = {
  queued: "Waiting for the scheduler's next pass",
  insufficient_resources: "Not enough free capacity",
  waiting_for_dependencies: "Waiting for its dependencies to succeed",
  preempted: "Preempted; waiting to run again",
  exceeds_capacity: "Larger than any cluster",
  quota_exceeded: "Its submitter's quota is used up",
  dependency_failed: "A dependency failed or was cancelled",
  max_runtime_exceeded: "Stopped after its maximum runtime",
  cancelled: "Cancelled",
  failed: "Failed",
};

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

/** The scheduler's messages name clusters and deployments by id; people know them by name. */
export function withNames(text: string, names: Map<string, string>): string {
  return text.replace(UUID, (id) => names.get(id) ?? id);
}

/** The reason in words, with the shortfall: the scheduler's own message when it has one
 * ("needs 2 more GPUs on cluster gpu-a"), else words for its code. */
export function reason(r: Reason | null, names: Map<string, string> = new Map()): string {
  if (!r) return "";
  const message = r.message ? withNames(r.message, names) : "";
  let text = message || (REASONS[r.code] ?? r.code.replace(/_/g, " "));
  const missing = shortfall(r.shortfall);
  if (missing && !message.includes("needs")) text += `: short of ${missing}`;
  return text;
}

export function reasonTitle(r: Reason): string {
  return REASONS[r.code] ?? r.code.replace(/_/g, " ");
}

export function duration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

export function since(iso: string, now: number): string {
  return duration(now - Date.parse(iso));
}

export function time(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

export const short = (id: string) => id.slice(0, 8);
