// DESIGN §9: the organization's fair-sharing settings, and each submitter's usage and quota.
// Every member reads them; only admins see the forms that change them.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, ApiError, del, get, patch } from "../api";
import { resources } from "../format";
import { useOrg } from "../session";
import type { Actor, Resources } from "../types";
import { ErrorBox, Field, Loading, Page, TableBox, useData } from "../ui";
import { numberOrText } from "./clusters";

type Settings = { developer_max_priority: number; aging_points_per_hour: number; aging_max_boost: number; fair_share: boolean };
type Quota = { cpu_cores: number | null; ram_gib: number | null; gpu_count: number | null };
type Usage = { submitter: Actor; running: Resources; running_count: number; pending_count: number; quota: Quota | null; dominant_share: number };

export function SettingsPage() {
  const org = useOrg();
  const settings = useData(() => get<Settings>(`/organizations/${org.id}/settings`), [org.id, org.tick]);
  return (
    <Page title="Settings">
      <p class="muted">How the scheduler shares this organization's clusters between its members.</p>
      <ErrorBox error={settings.error} />
      {settings.data === undefined ? (
        settings.loading && <Loading what="the settings" />
      ) : org.isAdmin ? (
        <SettingsForm current={settings.data} onSaved={settings.reload} />
      ) : (
        <section class="card">
          <dl class="fields">
            <dt>Highest priority for developers and tokens</dt>
            <dd>{settings.data.developer_max_priority}</dd>
            <dt>Aging</dt>
            <dd>{settings.data.aging_points_per_hour === 0 ? "off" : `${settings.data.aging_points_per_hour} points per hour waited, at most ${settings.data.aging_max_boost}`}</dd>
            <dt>Fair share</dt>
            <dd>{settings.data.fair_share ? "on" : "off"}</dd>
          </dl>
        </section>
      )}
    </Page>
  );
}

function SettingsForm({ current, onSaved }: { current: Settings; onSaved: () => void }) {
  const org = useOrg();
  const [ceiling, setCeiling] = useState(String(current.developer_max_priority));
  const [points, setPoints] = useState(String(current.aging_points_per_hour));
  const [boost, setBoost] = useState(String(current.aging_max_boost));
  const [fair, setFair] = useState(current.fair_share);
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState(false);
  // An admin elsewhere may change them: the form follows each new value from the server until
  // this one is edited (a ref, so a keystroke is never undone by an effect of an older render).
  const dirty = useRef(false);
  const last = useRef(JSON.stringify(current));
  useEffect(() => {
    const now = JSON.stringify(current);
    if (now === last.current) return;
    last.current = now;
    if (dirty.current) return;
    setCeiling(String(current.developer_max_priority));
    setPoints(String(current.aging_points_per_hour));
    setBoost(String(current.aging_max_boost));
    setFair(current.fair_share);
  }, [current]);
  const edit = (set: (v: string) => void) => (v: string) => {
    set(v);
    dirty.current = true;
    setSaved(false);
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      await patch(`/organizations/${org.id}/settings`, {
        developer_max_priority: numberOrText(ceiling),
        aging_points_per_hour: numberOrText(points),
        aging_max_boost: numberOrText(boost),
        fair_share: fair,
      });
      dirty.current = false;
      setSaved(true);
      onSaved();
    } catch (err) {
      setError(err);
    }
  };
  const f = (field: string) => (error instanceof ApiError ? error.forField(field) : undefined);
  return (
    <form class="card narrow" onSubmit={submit} noValidate>
      <Field label="Highest priority for developers and tokens" name="developer_max_priority" value={ceiling} onInput={edit(setCeiling)} inputMode="numeric" hint="1–100; admins are not capped." error={f("developer_max_priority")} />
      <Field label="Aging: points per hour waited" name="aging_points_per_hour" value={points} onInput={edit(setPoints)} inputMode="numeric" hint="0–100; 0 turns aging off. Aging orders the queue; it never grants the right to preempt." error={f("aging_points_per_hour")} />
      <Field label="Aging: largest boost" name="aging_max_boost" value={boost} onInput={edit(setBoost)} inputMode="numeric" hint="0–99 points." error={f("aging_max_boost")} />
      <div class="field">
        <label>
          <input
            type="checkbox"
            name="fair_share"
            checked={fair}
            onChange={(e) => {
              setFair((e.target as HTMLInputElement).checked);
              dirty.current = true;
              setSaved(false);
            }}
          />{" "}
          Fair share: among equal priorities, the submitter using the least goes first
        </label>
      </div>
      <ErrorBox error={error} />
      <button type="submit">Save settings</button>{" "}
      <span role="status" class="muted copy-status">
        {saved ? "Saved" : ""}
      </span>
    </form>
  );
}

const quotaText = (q: Quota | null) => {
  if (!q) return "none";
  const parts = [q.cpu_cores !== null ? `${q.cpu_cores} CPU` : "", q.ram_gib !== null ? `${q.ram_gib} GiB RAM` : "", q.gpu_count !== null ? `${q.gpu_count} GPU` : ""].filter(Boolean);
  return parts.length ? parts.join(" · ") : "none";
};

function quotaPath(org: string, s: Actor) {
  return s.kind === "token" ? `/organizations/${org}/tokens/${s.id}/quota` : `/organizations/${org}/members/${s.id}/quota`;
}

export function UsagePage() {
  const org = useOrg();
  const usage = useData(() => get<Usage[]>(`/organizations/${org.id}/usage`), [org.id, org.tick]);
  return (
    <Page title="Usage and quotas">
      <p class="muted">What each member and API token holds running now, its share of the organization, and its quota (what its running work may hold at once; a quota's empty field is unlimited).</p>
      <ErrorBox error={usage.error} />
      {usage.data === undefined ? (
        usage.loading && <Loading what="usage" />
      ) : (
        <TableBox label="Usage">
          <table>
            <caption>Largest share first</caption>
            <thead>
              <tr>
                <th scope="col">Submitter</th>
                <th scope="col">Running</th>
                <th scope="col">Deployments</th>
                <th scope="col">Dominant share</th>
                <th scope="col">Quota</th>
              </tr>
            </thead>
            <tbody>
              {usage.data.map((u) => (
                <tr key={`${u.submitter.kind}-${u.submitter.id}`}>
                  <td class="name">
                    {u.submitter.name} <span class="muted">({u.submitter.kind === "token" ? "API token" : "member"})</span>
                  </td>
                  <td>{resources(u.running)}</td>
                  <td>
                    {u.running_count} running, {u.pending_count} pending
                  </td>
                  <td>
                    <Share usage={u} />
                  </td>
                  <td>{org.isAdmin ? <QuotaForm org={org.id} usage={u} onChanged={usage.reload} /> : quotaText(u.quota)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableBox>
      )}
    </Page>
  );
}

function Share({ usage }: { usage: Usage }) {
  const id = `share-${usage.submitter.kind}-${usage.submitter.id}`;
  const percent = `${Math.round(usage.dominant_share * 100)}%`;
  return (
    <div class="share">
      <label for={id}>{percent}</label>
      <meter id={id} min={0} max={1} aria-label={`Dominant share of ${usage.submitter.name}`} aria-valuetext={percent} ref={(el) => el?.setAttribute("value", String(usage.dominant_share))} />
    </div>
  );
}

const text = (v: number | null | undefined) => (v === null || v === undefined ? "" : String(v));

function QuotaForm({ org, usage, onChanged }: { org: string; usage: Usage; onChanged: () => void }) {
  const [cpu, setCpu] = useState(text(usage.quota?.cpu_cores));
  const [ram, setRam] = useState(text(usage.quota?.ram_gib));
  const [gpu, setGpu] = useState(text(usage.quota?.gpu_count));
  const [error, setError] = useState<unknown>(null);
  const run = async (action: () => Promise<unknown>) => {
    setError(null);
    try {
      await action();
      onChanged();
    } catch (err) {
      setError(err);
    }
  };
  // An empty field is unlimited: it is left out of the body.
  const body = () => {
    const b: Record<string, unknown> = {};
    if (cpu.trim()) b.cpu_cores = numberOrText(cpu);
    if (ram.trim()) b.ram_gib = numberOrText(ram);
    if (gpu.trim()) b.gpu_count = numberOrText(gpu);
    return b;
  };
  const f = (field: string) => (error instanceof ApiError ? error.forField(field) : undefined);
  const who = usage.submitter.name;
  return (
    <details>
      <summary>
        {quotaText(usage.quota)}
        <span class="visually-hidden"> — change the quota of {who}</span>
      </summary>
      <form
        class="inline-form quota"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          run(() => api("PUT", quotaPath(org, usage.submitter), body()));
        }}
      >
        <Field label={`CPU cores (${who})`} name="cpu_cores" value={cpu} onInput={setCpu} inputMode="decimal" error={f("cpu_cores")} />
        <Field label={`RAM GiB (${who})`} name="ram_gib" value={ram} onInput={setRam} inputMode="decimal" error={f("ram_gib")} />
        <Field label={`GPUs (${who})`} name="gpu_count" value={gpu} onInput={setGpu} inputMode="numeric" error={f("gpu_count")} />
        <button type="submit">Set quota of {who}</button>
        {usage.quota && (
          <button type="button" class="danger" onClick={() => run(() => del(quotaPath(org, usage.submitter)))}>
            Remove quota of {who}
          </button>
        )}
      </form>
      <ErrorBox error={error} />
    </details>
  );
}
