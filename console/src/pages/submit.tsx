import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, post } from "../api";
import { listDeployments } from "../deployments";
import { get } from "../api";
import { navigate } from "../router";
import { useOrg } from "../session";
import type { Cluster, Deployment, DryRun } from "../types";
import { ErrorBox, Field, Page, Select, useData } from "../ui";
import { numberOrText } from "./clusters";

const DEBOUNCE_MS = 300;

type Form = { name: string; image: string; cluster: string; cpu: string; ram: string; gpu: string; priority: string; dependsOn: string; maxRuntime: string };

function body(org: string, f: Form) {
  const b: Record<string, unknown> = {
    organization_id: org,
    name: f.name,
    image: f.image,
    resources: { cpu_cores: numberOrText(f.cpu), ram_gib: numberOrText(f.ram), gpu_count: numberOrText(f.gpu) },
  };
  if (f.cluster) b.cluster_id = f.cluster;
  if (f.priority.trim()) b.priority = numberOrText(f.priority);
  const deps = f.dependsOn
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
  if (deps.length) b.depends_on = deps;
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
  const why = r.reason?.message ?? "";
  if (r.outcome === "queue") return `Waits${why ? `: ${why}` : ""}.`;
  return `Cannot run${why ? `: ${why}` : ""}.`;
}

export function Submit() {
  const org = useOrg();
  const [form, setForm] = useState<Form>({ name: "", image: "", cluster: "", cpu: "1", ram: "1", gpu: "0", priority: "50", dependsOn: "", maxRuntime: "" });
  const [dry, setDry] = useState<{ result?: DryRun; error?: unknown }>({});
  const [submitError, setSubmitError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const seq = useRef(0);
  const context = useData(async () => {
    const [clusters, running] = await Promise.all([get<Cluster[]>(`/clusters?organization_id=${org.id}`), listDeployments(org.id, "running")]);
    return { clusters, names: new Map(clusters.map((c) => [c.id, c.name])), running: new Map(running.map((d) => [d.id, d])) };
  }, [org.id, org.tick]);

  const set = (key: keyof Form) => (value: string) => setForm((f) => ({ ...f, [key]: value }));

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
      const d = await post<Deployment>("/deployments", body(org.id, form));
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
          <Field label="Depends on (deployment ids)" name="depends_on" value={form.dependsOn} onInput={set("dependsOn")} hint="Separated by commas or spaces." error={f("depends_on")} />
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
