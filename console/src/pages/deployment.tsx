import { useState } from "preact/hooks";
import { get, post } from "../api";
import { clusterNames, victimsOf } from "../deployments";
import { reason, reasonTitle, resources, since, time, withNames } from "../format";
import { useNow } from "../live";
import { useOrg } from "../session";
import type { Deployment, DeploymentEvent } from "../types";
import { ErrorBox, Field, Link, Loading, Page, Select, Status, useData } from "../ui";

type Loaded = { d: Deployment; events: DeploymentEvent[]; victims: string[]; related: Map<string, Deployment>; clusters: Map<string, string> };

async function load(id: string, org: string): Promise<Loaded> {
  const [d, events, clusters, victims] = await Promise.all([
    get<Deployment>(`/deployments/${id}`),
    get<DeploymentEvent[]>(`/deployments/${id}/events`),
    clusterNames(org),
    victimsOf(org, id),
  ]);
  // The deployments it names (preemptors, victims, dependencies), for their names and links.
  const ids = new Set([...events.map((e) => e.related_deployment_id).filter((x): x is string => !!x), ...d.depends_on, ...victims]);
  const related = new Map<string, Deployment>();
  await Promise.all(
    [...ids].map((rid) =>
      get<Deployment>(`/deployments/${rid}`).then(
        (r) => related.set(rid, r),
        () => undefined,
      ),
    ),
  );
  return { d, events, victims, related, clusters };
}

const EVENT_WORDS: Record<string, string> = {
  submitted: "Submitted",
  started: "Started",
  preempted: "Preempted",
  requeued: "Requeued",
  cancelled: "Cancelled",
  succeeded: "Succeeded",
  failed: "Failed",
  dependency_failed: "Dependency failed",
};

function RelatedLink({ event, org, related }: { event: DeploymentEvent; org: string; related: Map<string, Deployment> }) {
  const rid = event.related_deployment_id;
  if (!rid) return null;
  const other = related.get(rid);
  const name = other ? `${other.name} (priority ${other.priority})` : rid;
  const words = event.type === "preempted" ? "by" : event.type === "requeued" ? "after preemption by" : event.type === "dependency_failed" ? "because of" : "with";
  return (
    <>
      {" "}
      {words} <Link to={`/o/${org}/deployments/${rid}`}>{name}</Link>
    </>
  );
}

export function DeploymentPage({ id }: { id: string }) {
  const org = useOrg();
  const now = useNow();
  const data = useData(() => load(id, org.id), [id, org.id, org.tick]);
  if (data.data === undefined)
    return (
      <Page title="Deployment">
        <ErrorBox error={data.error} />
        {data.loading && <Loading what="the deployment" />}
      </Page>
    );
  const { d, events, victims, related, clusters } = data.data;
  const names = new Map([...clusters, ...[...related].map(([rid, r]) => [rid, r.name] as [string, string])]);
  const cluster = (cid: string | null) => (cid ? (clusters.get(cid) ?? cid) : "any (the scheduler chooses)");
  return (
    <Page title={`Deployment ${d.name}`}>
      <ErrorBox error={data.error} />
      <p>
        <Status status={d.status} /> {d.reason && (
          <span class="reason">
            <strong>{reasonTitle(d.reason)}</strong>: {reason(d.reason, names)}
          </span>
        )}
      </p>
      {org.canDeploy && (d.status === "pending" || d.status === "running") && <Actions d={d} onDone={data.reload} />}
      <section class="card">
        <h2>Fields</h2>
        <dl class="fields">
          <dt>Name</dt>
          <dd>{d.name}</dd>
          <dt>ID</dt>
          <dd>
            <code>{d.id}</code>
          </dd>
          <dt>Status</dt>
          <dd>{d.status}</dd>
          <dt>Reason</dt>
          <dd>{d.reason ? `${reason(d.reason, names)} (${d.reason.code})` : "—"}</dd>
          <dt>Image</dt>
          <dd>
            <code>{d.image}</code>
          </dd>
          <dt>Resources</dt>
          <dd>{resources(d.resources)}</dd>
          <dt>Priority</dt>
          <dd>
            {d.priority}
            {d.effective_priority !== undefined && d.effective_priority !== d.priority ? ` (effective ${d.effective_priority})` : ""}
          </dd>
          <dt>Cluster</dt>
          <dd>{cluster(d.cluster_id)}</dd>
          <dt>Requested cluster</dt>
          <dd>{cluster(d.requested_cluster_id)}</dd>
          <dt>Queue position</dt>
          <dd>{d.queue_position ?? "—"}</dd>
          <dt>Depends on</dt>
          <dd>
            {d.depends_on.length === 0
              ? "—"
              : d.depends_on.map((dep, i) => (
                  <span key={dep}>
                    {i > 0 && ", "}
                    <Link to={`/o/${org.id}/deployments/${dep}`}>{related.get(dep)?.name ?? dep}</Link>
                    {related.get(dep) && ` (${related.get(dep)!.status})`}
                  </span>
                ))}
          </dd>
          <dt>Preempted</dt>
          <dd>{d.preemption_count} times</dd>
          <dt>Maximum runtime</dt>
          <dd>{d.max_runtime_seconds ? `${d.max_runtime_seconds} s` : "none"}</dd>
          <dt>Submitted by</dt>
          <dd>
            {d.submitted_by.name} ({d.submitted_by.kind === "token" ? "API token" : "user"})
          </dd>
          <dt>Submitted</dt>
          <dd>
            {time(d.created_at)} ({since(d.created_at, now)} ago)
          </dd>
          <dt>Started</dt>
          <dd>{time(d.started_at)}</dd>
          <dt>Finished</dt>
          <dd>{time(d.finished_at)}</dd>
        </dl>
      </section>
      {victims.length > 0 && (
        <section class="card">
          <h2>Preempted to make room for it</h2>
          <ul class="victims">
            {victims.map((v) => (
              <li key={v}>
                <Link to={`/o/${org.id}/deployments/${v}`}>{related.get(v)?.name ?? v}</Link>
                {related.get(v) && ` (priority ${related.get(v)!.priority}, now ${related.get(v)!.status})`}
              </li>
            ))}
          </ul>
        </section>
      )}
      <section class="card">
        <h2>Events</h2>
        <ol class="timeline">
          {events.map((e, i) => (
            <li key={i} class={`event event-${e.type}`}>
              <time dateTime={e.at}>{time(e.at)}</time> <strong>{EVENT_WORDS[e.type] ?? e.type}</strong>
              <RelatedLink event={e} org={org.id} related={related} />
              {e.actor && <span class="muted"> by {e.actor.name}</span>}
              {e.detail && <div class="muted">{withNames(e.detail, names)}</div>}
            </li>
          ))}
        </ol>
      </section>
    </Page>
  );
}

function Actions({ d, onDone }: { d: Deployment; onDone: () => void }) {
  const [error, setError] = useState<unknown>(null);
  const [outcome, setOutcome] = useState("succeeded");
  const [message, setMessage] = useState("");
  const act = async (path: string, body: unknown) => {
    setError(null);
    try {
      await post(`/deployments/${d.id}/${path}`, body);
      onDone();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <section class="card actions">
      <h2>Actions</h2>
      <div class="inline-form">
        <button type="button" class="danger" onClick={() => act("cancel", {})}>
          Cancel deployment
        </button>
      </div>
      {d.status === "running" && (
        <form
          class="inline-form"
          onSubmit={(e) => {
            e.preventDefault();
            act("complete", message ? { outcome, message } : { outcome });
          }}
        >
          <Select
            label="Outcome"
            name="outcome"
            value={outcome}
            onInput={setOutcome}
            options={[
              ["succeeded", "Succeeded"],
              ["failed", "Failed"],
            ]}
          />
          <Field label="Message (optional)" name="message" value={message} onInput={setMessage} />
          <button type="submit">Mark complete</button>
        </form>
      )}
      <ErrorBox error={error} />
    </section>
  );
}
