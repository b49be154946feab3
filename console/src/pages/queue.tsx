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
          <table>
            <caption>{items.length} waiting</caption>
            <thead>
              <tr>
                <th scope="col">Position</th>
                <th scope="col">Name</th>
                <th scope="col">Priority</th>
                <th scope="col">Requests</th>
                <th scope="col">Cluster</th>
                <th scope="col">Why it waits</th>
                <th scope="col">Waited</th>
              </tr>
            </thead>
            <tbody>
              {items.map((d) => (
                <tr key={d.id}>
                  <td>{d.queue_position ?? "—"}</td>
                  <td class="name">
                    <Link to={`/o/${org.id}/deployments/${d.id}`}>{d.name}</Link>
                  </td>
                  <td>
                    <Priority d={d} />
                  </td>
                  <td>{resources(d.resources)}</td>
                  <td>{d.cluster_id ? (data.data!.names.get(d.cluster_id) ?? "—") : "any"}</td>
                  <td class="reason">
                    {d.reason && <strong>{reasonTitle(d.reason)}</strong>}
                    <div>{reason(d.reason, data.data!.names)}</div>
                  </td>
                  <td>{since(d.created_at, now)}</td>
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
          <table>
            <caption>{items.length} running</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Status</th>
                <th scope="col">Cluster</th>
                <th scope="col">Priority</th>
                <th scope="col">Uses</th>
                <th scope="col">Started</th>
                <th scope="col">Running for</th>
                <th scope="col">Preempted</th>
              </tr>
            </thead>
            <tbody>
              {items.map((d) => (
                <tr key={d.id}>
                  <td class="name">
                    <Link to={`/o/${org.id}/deployments/${d.id}`}>{d.name}</Link>
                  </td>
                  <td>
                    <Status status={d.status} />
                  </td>
                  <td>{d.cluster_id ? (data.data!.names.get(d.cluster_id) ?? "—") : "—"}</td>
                  <td>{d.priority}</td>
                  <td>{resources(d.resources)}</td>
                  <td>{time(d.started_at)}</td>
                  <td>{d.started_at ? since(d.started_at, now) : "—"}</td>
                  <td>{d.preemption_count} times</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableBox>
      )}
    </Page>
  );
}
