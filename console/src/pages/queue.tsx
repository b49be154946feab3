import { listDeployments, clusterNames } from "../deployments";
import { reason, reasonTitle, resources, since, time } from "../format";
import { useNow } from "../live";
import { useOrg } from "../session";
import type { Deployment } from "../types";
import { ErrorBox, Link, Loading, Page, Status, TableBox, useData } from "../ui";

async function load(org: string, status: string) {
  const [items, names] = await Promise.all([listDeployments(org, status), clusterNames(org)]);
  return { items, names };
}

/** Effective priority first (with aging, DESIGN §9) and the base beside it when they differ. */
function Priority({ d }: { d: Deployment }) {
  const effective = d.effective_priority;
  if (effective === undefined || effective === d.priority) return <>{d.priority}</>;
  return (
    <>
      {effective} <span class="muted">(base {d.priority})</span>
    </>
  );
}

// The tables below carry their roles explicitly: on a phone they are laid out as cards
// (display: block), which would otherwise drop their table semantics.

export function Queue() {
  const org = useOrg();
  const now = useNow();
  const data = useData(() => load(org.id, "pending"), [org.id, org.tick]);
  // The API's queue_position is the scheduling order.
  const items = [...(data.data?.items ?? [])].sort((a, b) => (a.queue_position ?? 1e9) - (b.queue_position ?? 1e9));
  return (
    <Page title="Queue">
      <p class="muted">Waiting deployments in the order the scheduler considers them.</p>
      <ErrorBox error={data.error} />
      {data.data === undefined ? (
        data.loading && <Loading what="the queue" />
      ) : items.length === 0 ? (
        <p>Nothing is waiting.</p>
      ) : (
        <TableBox label="Queue">
          <table class="stack" role="table">
            <caption>{items.length} waiting</caption>
            <thead role="rowgroup">
              <tr role="row">
                <th scope="col" role="columnheader">Position</th>
                <th scope="col" role="columnheader">Name</th>
                <th scope="col" role="columnheader">Priority</th>
                <th scope="col" role="columnheader">Requests</th>
                <th scope="col" role="columnheader">Cluster</th>
                <th scope="col" role="columnheader">Why it waits</th>
                <th scope="col" role="columnheader">Waited</th>
              </tr>
            </thead>
            <tbody role="rowgroup">
              {items.map((d) => (
                <tr key={d.id} role="row">
                  <td role="cell" data-label="Position">{d.queue_position ?? "—"}</td>
                  <td role="cell" data-label="Name" class="name">
                    <Link to={`/o/${org.id}/deployments/${d.id}`}>{d.name}</Link>
                  </td>
                  <td role="cell" data-label="Priority">
                    <Priority d={d} />
                  </td>
                  <td role="cell" data-label="Requests">{resources(d.resources)}</td>
                  <td role="cell" data-label="Cluster">{d.cluster_id ? (data.data!.names.get(d.cluster_id) ?? "—") : "any"}</td>
                  <td role="cell" data-label="Why it waits" class="reason">
                    <div>
                      {d.reason && <strong>{reasonTitle(d.reason)}</strong>}
                      <div>{reason(d.reason, data.data!.names)}</div>
                    </div>
                  </td>
                  <td role="cell" data-label="Waited">{since(d.created_at, now)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableBox>
      )}
    </Page>
  );
}

export function Running() {
  const org = useOrg();
  const now = useNow();
  const data = useData(() => load(org.id, "running"), [org.id, org.tick]);
  const items = data.data?.items ?? [];
  return (
    <Page title="Running">
      <ErrorBox error={data.error} />
      {data.data === undefined ? (
        data.loading && <Loading what="running work" />
      ) : items.length === 0 ? (
        <p>Nothing is running.</p>
      ) : (
        <TableBox label="Running deployments">
          <table class="stack" role="table">
            <caption>{items.length} running</caption>
            <thead role="rowgroup">
              <tr role="row">
                <th scope="col" role="columnheader">Name</th>
                <th scope="col" role="columnheader">Status</th>
                <th scope="col" role="columnheader">Cluster</th>
                <th scope="col" role="columnheader">Priority</th>
                <th scope="col" role="columnheader">Uses</th>
                <th scope="col" role="columnheader">Started</th>
                <th scope="col" role="columnheader">Running for</th>
                <th scope="col" role="columnheader">Preempted</th>
              </tr>
            </thead>
            <tbody role="rowgroup">
              {items.map((d) => (
                <tr key={d.id} role="row">
                  <td role="cell" data-label="Name" class="name">
                    <Link to={`/o/${org.id}/deployments/${d.id}`}>{d.name}</Link>
                  </td>
                  <td role="cell" data-label="Status">
                    <Status status={d.status} />
                  </td>
                  <td role="cell" data-label="Cluster">{d.cluster_id ? (data.data!.names.get(d.cluster_id) ?? "—") : "—"}</td>
                  <td role="cell" data-label="Priority">{d.priority}</td>
                  <td role="cell" data-label="Uses">{resources(d.resources)}</td>
                  <td role="cell" data-label="Started">{time(d.started_at)}</td>
                  <td role="cell" data-label="Running for">{d.started_at ? since(d.started_at, now) : "—"}</td>
                  <td role="cell" data-label="Preempted">{d.preemption_count} times</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableBox>
      )}
    </Page>
  );
}
