import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, post } from "../api";
import { listDeployments } from "../deployments";
import { get } from "../api";
import { withNames } from "../format";
import { navigate } from "../router";
import { useOrg } from "../session";
import type { Cluster, Deployment, DryRun } from "../types";
import { ErrorBox, Field, Page, Select, useData } from "../ui";

let fieldIds = 0;
import { numberOrText } from "./clusters";

const DEBOUNCE_MS = 300;

type Form = { name: string; image: string; cluster: string; cpu: string; ram: string; gpu: string; priority: string; dependsOn: string[]; maxRuntime: string };

function body(org: string, f: Form) {
  const b: Record<string, unknown> = {
    organization_id: org,
    name: f.name,
    image: f.image,
    resources: { cpu_cores: numberOrText(f.cpu), ram_gib: numberOrText(f.ram), gpu_count: numberOrText(f.gpu) },
  };
  if (f.cluster) b.cluster_id = f.cluster;
  if (f.priority.trim()) b.priority = numberOrText(f.priority);
  if (f.dependsOn.length) b.depends_on = f.dependsOn;
  if (f.maxRuntime.trim()) b.max_runtime_seconds = numberOrText(f.maxRuntime);
  return b;
}

/** What the dry-run says, in words: "starts now on gpu-a", "waits: needs 2 more GPUs ...". */
function preview(r: DryRun, clusters: Map<string, string>, running: Map<string, Deployment>): string {
  const on = r.cluster_id ? ` on ${clusters.get(r.cluster_id) ?? r.cluster_id}` : "";
  if (r.outcome === "start" && r.would_preempt.length === 0) return `Starts now${on}.`;
  if (r.outcome === "start") {
    const victims = r.would_preempt.map((id) => {
      const v = running.get(id);
      return v ? `${v.name} (priority ${v.priority})` : id;
    });
    return `Starts${on} by preempting ${victims.join(", ")}.`;
  }
  const why = withNames(r.reason?.message ?? "", clusters);
  if (r.outcome === "queue") return `Waits${why ? `: ${why}` : ""}.`;
  return `Cannot run${why ? `: ${why}` : ""}.`;
}

export function Submit() {
  const org = useOrg();
  const [form, setForm] = useState<Form>({ name: "", image: "", cluster: "", cpu: "1", ram: "1", gpu: "0", priority: "50", dependsOn: [], maxRuntime: "" });
  const [dry, setDry] = useState<{ result?: DryRun; error?: unknown }>({});
  const [submitError, setSubmitError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const seq = useRef(0);
  const context = useData(async () => {
    const [clusters, running, pending] = await Promise.all([
      get<Cluster[]>(`/clusters?organization_id=${org.id}`),
      listDeployments(org.id, "running"),
      listDeployments(org.id, "pending"),
    ]);
    return { clusters, names: new Map(clusters.map((c) => [c.id, c.name])), running: new Map(running.map((d) => [d.id, d])), unfinished: [...running, ...pending] };
  }, [org.id, org.tick]);

  const set = (key: Exclude<keyof Form, "dependsOn">) => (value: string) => setForm((f) => ({ ...f, [key]: value }));
  // A new form is a new submission: the key lets a retried POST of the same one count once.
  const idempotencyKey = useRef("");
  useEffect(() => {
    idempotencyKey.current = crypto.randomUUID();
  }, [form]);
  const depsId = useRef(`deps${++fieldIds}`).current;

  // The preview follows the form (and the cluster state, through the live counter), debounced,
  // and an answer to an older form never replaces a newer one.
  useEffect(() => {
    if (!form.name.trim() && !form.image.trim()) {
      setDry({});
      return;
    }
    const mine = ++seq.current;
    const timer = setTimeout(() => {
      post<DryRun>("/deployments/dry-run", body(org.id, form)).then(
        (result) => mine === seq.current && setDry({ result }),
        (error) => mine === seq.current && setDry({ error }),
      );
    }, DEBOUNCE_MS);
    return () => clearTimeout(timer);
  }, [form, org.id, org.tick]);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setSubmitError(null);
    try {
      const d = await post<Deployment>("/deployments", body(org.id, form), { "Idempotency-Key": idempotencyKey.current });
      navigate(`/o/${org.id}/deployments/${d.id}`);
    } catch (err) {
      setSubmitError(err);
    } finally {
      setBusy(false);
    }
  };

  // Field errors from the submission, else from the dry-run: the same checks.
  const problem = submitError instanceof ApiError ? submitError : dry.error instanceof ApiError ? dry.error : undefined;
  const f = (field: string) => problem?.forField(field);
  const clusterOptions: [string, string][] = [["", "Any (the scheduler chooses)"], ...(context.data?.clusters ?? []).map((c) => [c.id, c.name] as [string, string])];
  const words = dry.result && context.data ? preview(dry.result, context.data.names, context.data.running) : "";

  return (
    <Page title="Submit a deployment">
      <div class="columns submit-layout">
        <form onSubmit={submit} noValidate class="card">
          <Field label="Name" name="name" value={form.name} onInput={set("name")} required error={f("name")} />
          <Field label="Image" name="image" value={form.image} onInput={set("image")} required placeholder="ghcr.io/acme/trainer:1.4" error={f("image")} />
          <Select label="Cluster" name="cluster_id" value={form.cluster} onInput={set("cluster")} options={clusterOptions} error={f("cluster_id")} />
          <fieldset>
            <legend>Resources</legend>
            <Field label="CPU cores" name="cpu_cores" value={form.cpu} onInput={set("cpu")} inputMode="decimal" error={f("resources.cpu_cores") ?? f("resources")} />
            <Field label="RAM (GiB)" name="ram_gib" value={form.ram} onInput={set("ram")} inputMode="decimal" error={f("resources.ram_gib")} />
            <Field label="GPUs" name="gpu_count" value={form.gpu} onInput={set("gpu")} inputMode="numeric" error={f("resources.gpu_count")} />
          </fieldset>
          <Field label="Priority" name="priority" value={form.priority} onInput={set("priority")} inputMode="numeric" hint="1–100, higher runs first." error={f("priority")} />
          <div class={f("depends_on") ? "field invalid" : "field"}>
            <label for={depsId}>Depends on</label>
            <select
              id={depsId}
              name="depends_on"
              multiple
              size={Math.min(5, Math.max(2, context.data?.unfinished.length ?? 2))}
              aria-describedby={`${depsId}-hint${f("depends_on") ? ` ${depsId}-error` : ""}`}
              onChange={(e) => {
                const chosen = [...(e.target as HTMLSelectElement).selectedOptions].map((o) => o.value);
                setForm((old) => ({ ...old, dependsOn: chosen }));
              }}
            >
              {(context.data?.unfinished ?? []).map((d) => (
                <option key={d.id} value={d.id} selected={form.dependsOn.includes(d.id)}>
                  {d.name} ({d.status})
                </option>
              ))}
            </select>
            <small id={`${depsId}-hint`} class="hint">
              Unfinished deployments that must succeed first (Ctrl or Shift to choose several).
            </small>
            {f("depends_on") && (
              <small id={`${depsId}-error`} class="field-error">
                {f("depends_on")}
              </small>
            )}
          </div>
          <Field label="Maximum runtime (seconds)" name="max_runtime_seconds" value={form.maxRuntime} onInput={set("maxRuntime")} inputMode="numeric" error={f("max_runtime_seconds")} />
          <ErrorBox error={submitError} />
          <button type="submit" disabled={busy}>
            {busy ? "Submitting…" : "Submit deployment"}
          </button>
        </form>
        <section class="card preview" aria-labelledby="preview-title">
          <h2 id="preview-title">Preview</h2>
          <p class="muted">What the scheduler would do with this form now (a dry run: nothing is submitted).</p>
          <div role="status" aria-live="polite" id="preview">
            {words ? (
              <p class={`outcome outcome-${dry.result!.outcome}`}>{words}</p>
            ) : dry.error ? (
              <ErrorBox error={dry.error} />
            ) : (
              <p class="muted">Fill in a name and an image to see it.</p>
            )}
          </div>
        </section>
      </div>
    </Page>
  );
}
