import { useState } from "preact/hooks";
import { ApiError, del, get, patch, post } from "../api";
import { useOrg } from "../session";
import type { Cluster, Resources } from "../types";
import { ErrorBox, Field, Loading, Page, useData } from "../ui";

/** A form's number: the text itself when it is not one, so the API names the field in its 422. */
export function numberOrText(s: string): number | string {
  if (s.trim() === "") return 0;
  const n = Number(s);
  return Number.isFinite(n) ? n : s;
}

const fmt = (n: number) => (Number.isInteger(n) ? String(n) : String(Math.round(n * 1000) / 1000));

function Bar({ cluster, resource, label, unit }: { cluster: Cluster; resource: keyof Resources; label: string; unit: string }) {
  const id = `bar-${cluster.id}-${resource}`;
  const capacity = cluster.capacity[resource];
  const allocated = cluster.allocated[resource];
  const text = `${fmt(allocated)} of ${fmt(capacity)} ${unit} allocated`;
  return (
    <div class="bar">
      <label for={id}>
        <span>{label}</span>
        <span>{text}</span>
      </label>
      {/* A cluster without this resource has a full-width empty meter, not a division by zero. */}
      {/* `value` goes in as an attribute too (Preact would set only the property), so the
          markup itself carries the numbers. */}
      <meter
        id={id}
        min={0}
        max={capacity > 0 ? capacity : 1}
        high={capacity * 0.9}
        optimum={0}
        aria-valuetext={text}
        ref={(el) => el?.setAttribute("value", String(allocated))}
      >
        {text}
      </meter>
    </div>
  );
}

export function Clusters() {
  const org = useOrg();
  const clusters = useData(() => get<Cluster[]>(`/clusters?organization_id=${org.id}`), [org.id, org.tick]);
  return (
    <Page title="Clusters">
      {org.isAdmin && <CreateCluster orgId={org.id} onCreated={clusters.reload} />}
      <ErrorBox error={clusters.error} />
      {clusters.data === undefined ? (
        clusters.loading && <Loading what="clusters" />
      ) : clusters.data.length === 0 ? (
        <p>This organization has no cluster yet.{org.isAdmin ? " Create one above." : " An admin can create one."}</p>
      ) : (
        <ul class="cluster-grid">
          {clusters.data.map((c) => (
            <li key={c.id} class="card cluster">
              <h2>{c.name}</h2>
              <Bar cluster={c} resource="cpu_cores" label="CPU" unit="cores" />
              <Bar cluster={c} resource="ram_gib" label="RAM" unit="GiB" />
              <Bar cluster={c} resource="gpu_count" label="GPU" unit="GPUs" />
              <p class="counts">
                <span>
                  <strong>{c.running_count}</strong> running
                </span>
                <span>
                  <strong>{c.pending_count}</strong> pending
                </span>
              </p>
              {org.isAdmin && <ClusterAdmin cluster={c} onChanged={clusters.reload} />}
            </li>
          ))}
        </ul>
      )}
    </Page>
  );
}

function CreateCluster({ orgId, onCreated }: { orgId: string; onCreated: () => void }) {
  const [name, setName] = useState("");
  const [cpu, setCpu] = useState("");
  const [ram, setRam] = useState("");
  const [gpu, setGpu] = useState("");
  const [error, setError] = useState<unknown>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      await post("/clusters", { organization_id: orgId, name, cpu_cores: numberOrText(cpu), ram_gib: numberOrText(ram), gpu_count: numberOrText(gpu) });
      setName("");
      setCpu("");
      setRam("");
      setGpu("");
      onCreated();
    } catch (err) {
      setError(err);
    }
  };
  const f = (field: string) => (error instanceof ApiError ? error.forField(field) : undefined);
  return (
    <details class="card">
      <summary>Create a cluster</summary>
      <form onSubmit={submit} noValidate class="inline-form">
        <Field label="Name" name="name" value={name} onInput={setName} required error={f("name")} />
        <Field label="CPU cores" name="cpu_cores" value={cpu} onInput={setCpu} inputMode="decimal" error={f("cpu_cores")} />
        <Field label="RAM (GiB)" name="ram_gib" value={ram} onInput={setRam} inputMode="decimal" error={f("ram_gib")} />
        <Field label="GPUs" name="gpu_count" value={gpu} onInput={setGpu} inputMode="numeric" error={f("gpu_count")} />
        <button type="submit">Create cluster</button>
      </form>
      <ErrorBox error={error} />
    </details>
  );
}

function ClusterAdmin({ cluster, onChanged }: { cluster: Cluster; onChanged: () => void }) {
  const [cpu, setCpu] = useState(String(cluster.capacity.cpu_cores));
  const [ram, setRam] = useState(String(cluster.capacity.ram_gib));
  const [gpu, setGpu] = useState(String(cluster.capacity.gpu_count));
  const [error, setError] = useState<unknown>(null);
  const resize = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      await patch(`/clusters/${cluster.id}`, { cpu_cores: numberOrText(cpu), ram_gib: numberOrText(ram), gpu_count: numberOrText(gpu) });
      onChanged();
    } catch (err) {
      setError(err);
    }
  };
  const remove = async () => {
    if (!confirm(`Delete cluster ${cluster.name}?`)) return;
    setError(null);
    try {
      await del(`/clusters/${cluster.id}`);
      onChanged();
    } catch (err) {
      setError(err);
    }
  };
  const f = (field: string) => (error instanceof ApiError ? error.forField(field) : undefined);
  return (
    <details>
      <summary>Resize or delete {cluster.name}</summary>
      <form onSubmit={resize} noValidate class="inline-form">
        <Field label="CPU cores" name="cpu_cores" value={cpu} onInput={setCpu} inputMode="decimal" error={f("cpu_cores")} />
        <Field label="RAM (GiB)" name="ram_gib" value={ram} onInput={setRam} inputMode="decimal" error={f("ram_gib")} />
        <Field label="GPUs" name="gpu_count" value={gpu} onInput={setGpu} inputMode="numeric" error={f("gpu_count")} />
        <button type="submit">Resize</button>
        <button type="button" class="danger" onClick={remove}>
          Delete cluster
        </button>
      </form>
      <ErrorBox error={error} />
    </details>
  );
}
