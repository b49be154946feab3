import { useState } from "preact/hooks";
import { ApiError, del, get, patch, post } from "../api";
import { time } from "../format";
import { navigate } from "../router";
import { useOrg, useSession } from "../session";
import type { ApiToken, AuditEntry, Delivery, Invite, Member, Role, Webhook } from "../types";
import { CopyButton, ErrorBox, Field, Link, Loading, Page, Select, TableBox, useData } from "../ui";

const ROLES: [string, string][] = [
  ["viewer", "viewer"],
  ["developer", "developer"],
  ["admin", "admin"],
];

function useAction(onDone: () => void) {
  const [error, setError] = useState<unknown>(null);
  const run = async (action: () => Promise<unknown>) => {
    setError(null);
    try {
      await action();
      onDone();
    } catch (err) {
      setError(err);
    }
  };
  return { error, run, setError };
}

/** A secret the API shows once: visible until dismissed, never stored. */
function OnceSecret({ label, secret, onDismiss }: { label: string; secret: string; onDismiss: () => void }) {
  return (
    <div class="notice" role="status">
      <p>
        <strong>{label}</strong> This is the only time it is shown: copy it now.
      </p>
      <p>
        <code class="secret" id="once-secret">
          {secret}
        </code>
      </p>
      <CopyButton text={secret} label="Copy" />{" "}
      <button type="button" class="secondary" onClick={onDismiss}>
        I have copied it
      </button>
    </div>
  );
}

export function Members() {
  const org = useOrg();
  const { me, reloadMe } = useSession();
  const members = useData(() => get<Member[]>(`/organizations/${org.id}/members`), [org.id, org.tick]);
  const action = useAction(members.reload);
  const leave = () =>
    action.run(async () => {
      await del(`/organizations/${org.id}/members/${me.id}`);
      await reloadMe();
      navigate("/orgs");
    });
  return (
    <Page title="Members">
      <ErrorBox error={members.error ?? action.error} />
      {members.data === undefined ? (
        members.loading && <Loading what="members" />
      ) : (
        <TableBox label="Members">
          <table>
            <caption>
              {members.data.length} {members.data.length === 1 ? "member" : "members"}
            </caption>
            <thead>
              <tr>
                <th scope="col">User</th>
                <th scope="col">Role</th>
                <th scope="col">Joined</th>
                {org.isAdmin && <th scope="col">Remove</th>}
              </tr>
            </thead>
            <tbody>
              {members.data.map((m) => (
                <tr key={m.user_id}>
                  <td>
                    {m.username}
                    {m.user_id === me.id && " (you)"}
                  </td>
                  <td>
                    {org.isAdmin ? (
                      <>
                        <label class="visually-hidden" for={`role-${m.user_id}`}>
                          Role of {m.username}
                        </label>
                        <select
                          id={`role-${m.user_id}`}
                          value={m.role}
                          onChange={(e) => {
                            const role = (e.target as HTMLSelectElement).value as Role;
                            action.run(async () => {
                              await patch(`/organizations/${org.id}/members/${m.user_id}`, { role });
                              if (m.user_id === me.id) await reloadMe();
                            });
                          }}
                        >
                          {ROLES.map(([v, t]) => (
                            <option key={v} value={v}>
                              {t}
                            </option>
                          ))}
                        </select>
                      </>
                    ) : (
                      m.role
                    )}
                  </td>
                  <td>{time(m.joined_at)}</td>
                  {org.isAdmin && (
                    <td>
                      {m.user_id !== me.id && (
                        <button type="button" class="danger" onClick={() => action.run(() => del(`/organizations/${org.id}/members/${m.user_id}`))}>
                          Remove {m.username}
                        </button>
                      )}
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </TableBox>
      )}
      <p>
        <button type="button" class="secondary" onClick={leave}>
          Leave this organization
        </button>
      </p>
    </Page>
  );
}

type CreatedInvite = { id: string; code: string; role: Role; expires_at: string | null; max_uses: number | null };

export function Invites() {
  const org = useOrg();
  const invites = useData(() => get<Invite[]>(`/organizations/${org.id}/invites`), [org.id, org.tick]);
  const [role, setRole] = useState("developer");
  const [hours, setHours] = useState("");
  const [uses, setUses] = useState("");
  const [created, setCreated] = useState<CreatedInvite | null>(null);
  const action = useAction(invites.reload);
  const create = (e: Event) => {
    e.preventDefault();
    action.run(async () => {
      const body: Record<string, unknown> = { role };
      if (hours.trim()) body.expires_in_hours = Number(hours) || hours;
      if (uses.trim()) body.max_uses = Number(uses) || uses;
      setCreated(await post<CreatedInvite>(`/organizations/${org.id}/invites`, body));
    });
  };
  const f = (field: string) => (action.error instanceof ApiError ? action.error.forField(field) : undefined);
  return (
    <Page title="Invites">
      <section class="card">
        <h2>Create an invite</h2>
        <form onSubmit={create} noValidate class="inline-form">
          <Select label="Role" name="role" value={role} onInput={setRole} options={ROLES} error={f("role")} />
          <Field label="Expires in (hours)" name="expires_in_hours" value={hours} onInput={setHours} inputMode="numeric" error={f("expires_in_hours")} />
          <Field label="Maximum uses" name="max_uses" value={uses} onInput={setUses} inputMode="numeric" error={f("max_uses")} />
          <button type="submit">Create invite</button>
        </form>
        {created && (
          <div class="notice" role="status">
            <p>
              Invite for a {created.role}: <code class="secret">{created.code}</code> <CopyButton text={created.code} label="Copy invite code" />
            </p>
          </div>
        )}
      </section>
      <ErrorBox error={invites.error ?? action.error} />
      {invites.data === undefined ? (
        invites.loading && <Loading what="invites" />
      ) : (
        <TableBox label="Invites">
          <table>
            <caption>Invites</caption>
            <thead>
              <tr>
                <th scope="col">Role</th>
                <th scope="col">Uses</th>
                <th scope="col">Expires</th>
                <th scope="col">Created</th>
                <th scope="col">State</th>
                <th scope="col">Revoke</th>
              </tr>
            </thead>
            <tbody>
              {invites.data.map((i) => (
                <tr key={i.id}>
                  <td>{i.role}</td>
                  <td>
                    {i.uses}
                    {i.max_uses !== null ? ` of ${i.max_uses}` : ""}
                  </td>
                  <td>{i.expires_at ? time(i.expires_at) : "never"}</td>
                  <td>{time(i.created_at)}</td>
                  <td>{i.revoked ? "revoked" : "active"}</td>
                  <td>
                    {!i.revoked && (
                      <button type="button" class="danger" onClick={() => action.run(() => del(`/organizations/${org.id}/invites/${i.id}`))}>
                        Revoke {i.role} invite
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableBox>
      )}
    </Page>
  );
}

type CreatedToken = ApiToken & { token: string };

export function Tokens() {
  const org = useOrg();
  const tokens = useData(() => get<ApiToken[]>(`/organizations/${org.id}/tokens`), [org.id, org.tick]);
  const [name, setName] = useState("");
  const [role, setRole] = useState("developer");
  const [days, setDays] = useState("90");
  const [secret, setSecret] = useState<string | null>(null);
  const action = useAction(tokens.reload);
  const create = (e: Event) => {
    e.preventDefault();
    action.run(async () => {
      const body: Record<string, unknown> = { name, role };
      if (days.trim()) body.expires_in_days = Number(days) || days;
      const t = await post<CreatedToken>(`/organizations/${org.id}/tokens`, body);
      setSecret(t.token);
      setName("");
    });
  };
  const f = (field: string) => (action.error instanceof ApiError ? action.error.forField(field) : undefined);
  return (
    <Page title="API tokens">
      <p class="muted">Tokens belong to the organization, for CI pipelines and scripts. A token is never an admin.</p>
      <section class="card">
        <h2>Create a token</h2>
        <form onSubmit={create} noValidate class="inline-form">
          <Field label="Name" name="name" value={name} onInput={setName} required error={f("name")} />
          <Select
            label="Role"
            name="role"
            value={role}
            onInput={setRole}
            options={[
              ["developer", "developer"],
              ["viewer", "viewer"],
            ]}
            error={f("role")}
          />
          <Field label="Expires in (days)" name="expires_in_days" value={days} onInput={setDays} inputMode="numeric" hint="1–365" error={f("expires_in_days")} />
          <button type="submit">Create token</button>
        </form>
        {secret && <OnceSecret label="The new token's secret." secret={secret} onDismiss={() => setSecret(null)} />}
      </section>
      <ErrorBox error={tokens.error ?? action.error} />
      {tokens.data === undefined ? (
        tokens.loading && <Loading what="tokens" />
      ) : (
        <TableBox label="API tokens">
          <table>
            <caption>API tokens</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Role</th>
                <th scope="col">Created</th>
                <th scope="col">Expires</th>
                <th scope="col">Last used</th>
                <th scope="col">State</th>
                <th scope="col">Revoke</th>
              </tr>
            </thead>
            <tbody>
              {tokens.data.map((t) => (
                <tr key={t.id}>
                  <td>{t.name}</td>
                  <td>{t.role}</td>
                  <td>{time(t.created_at)}</td>
                  <td>{time(t.expires_at)}</td>
                  <td>{t.last_used_at ? time(t.last_used_at) : "never"}</td>
                  <td>{t.revoked_at ? `revoked ${time(t.revoked_at)}` : "active"}</td>
                  <td>
                    {!t.revoked_at && (
                      <button type="button" class="danger" onClick={() => action.run(() => del(`/organizations/${org.id}/tokens/${t.id}`))}>
                        Revoke {t.name}
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableBox>
      )}
    </Page>
  );
}

const EVENT_TYPES = ["submitted", "started", "preempted", "requeued", "cancelled", "succeeded", "failed", "dependency_failed"];

export function Webhooks() {
  const org = useOrg();
  const hooks = useData(() => get<Webhook[]>(`/organizations/${org.id}/webhooks`), [org.id, org.tick]);
  const [url, setUrl] = useState("");
  const [description, setDescription] = useState("");
  const [types, setTypes] = useState<string[]>([]);
  const [secret, setSecret] = useState<string | null>(null);
  const action = useAction(hooks.reload);
  const create = (e: Event) => {
    e.preventDefault();
    action.run(async () => {
      const body: Record<string, unknown> = { url };
      if (types.length) body.event_types = types;
      if (description.trim()) body.description = description;
      const created = await post<{ secret: string }>(`/organizations/${org.id}/webhooks`, body);
      setSecret(created.secret);
      setUrl("");
      setDescription("");
    });
  };
  const f = (field: string) => (action.error instanceof ApiError ? action.error.forField(field) : undefined);
  return (
    <Page title="Webhooks">
      <section class="card">
        <h2>Add a webhook</h2>
        <form onSubmit={create} noValidate>
          <Field label="URL" name="url" type="url" value={url} onInput={setUrl} required placeholder="https://example.org/hooks/hypervisor" error={f("url")} />
          <Field label="Description" name="description" value={description} onInput={setDescription} error={f("description")} />
          <fieldset class="checks">
            <legend>Event types (none ticked: all)</legend>
            {EVENT_TYPES.map((t) => (
              <label key={t}>
                <input
                  type="checkbox"
                  name="event_types"
                  value={t}
                  checked={types.includes(t)}
                  onChange={(e) => {
                    const on = (e.target as HTMLInputElement).checked;
                    setTypes((ts) => (on ? [...ts, t] : ts.filter((x) => x !== t)));
                  }}
                />{" "}
                {t}
              </label>
            ))}
          </fieldset>
          <button type="submit">Add webhook</button>
        </form>
        {secret && <OnceSecret label="The webhook's signing secret." secret={secret} onDismiss={() => setSecret(null)} />}
      </section>
      <ErrorBox error={hooks.error ?? action.error} />
      {hooks.data === undefined ? (
        hooks.loading && <Loading what="webhooks" />
      ) : hooks.data.length === 0 ? (
        <p>No webhooks yet.</p>
      ) : (
        <TableBox label="Webhooks">
          <table>
            <caption>Webhooks</caption>
            <thead>
              <tr>
                <th scope="col">URL</th>
                <th scope="col">Events</th>
                <th scope="col">Last delivery</th>
                <th scope="col">Health</th>
                <th scope="col">Delete</th>
              </tr>
            </thead>
            <tbody>
              {hooks.data.map((h) => (
                <tr key={h.id}>
                  <td>
                    <Link to={`/o/${org.id}/admin/webhooks/${h.id}`}>{h.url}</Link>
                    {h.description && <div class="muted">{h.description}</div>}
                  </td>
                  <td>{h.event_types.join(", ")}</td>
                  <td>{h.last_delivery_at ? time(h.last_delivery_at) : "none yet"}</td>
                  <td>{h.failing ? "failing" : "ok"}</td>
                  <td>
                    <button type="button" class="danger" onClick={() => action.run(() => del(`/organizations/${org.id}/webhooks/${h.id}`))}>
                      Delete webhook
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableBox>
      )}
    </Page>
  );
}

export function WebhookDeliveries({ id }: { id: string }) {
  const org = useOrg();
  const deliveries = useData(() => get<Delivery[]>(`/organizations/${org.id}/webhooks/${id}/deliveries`), [org.id, id, org.tick]);
  return (
    <Page title="Webhook deliveries">
      <p>
        <Link to={`/o/${org.id}/admin/webhooks`}>All webhooks</Link>
      </p>
      <ErrorBox error={deliveries.error} />
      {deliveries.data === undefined ? (
        deliveries.loading && <Loading what="deliveries" />
      ) : deliveries.data.length === 0 ? (
        <p>No delivery attempt yet.</p>
      ) : (
        <TableBox label="Deliveries">
          <table>
            <caption>Recent delivery attempts</caption>
            <thead>
              <tr>
                <th scope="col">At</th>
                <th scope="col">Event</th>
                <th scope="col">Attempt</th>
                <th scope="col">Result</th>
                <th scope="col">Next attempt</th>
              </tr>
            </thead>
            <tbody>
              {deliveries.data.map((d) => (
                <tr key={d.id}>
                  <td>{time(d.at)}</td>
                  <td>{d.event_type}</td>
                  <td>{d.attempt}</td>
                  <td>{d.delivered ? `delivered (HTTP ${d.status_code})` : `failed: ${d.error ?? `HTTP ${d.status_code}`}`}</td>
                  <td>{d.next_attempt_at ? time(d.next_attempt_at) : "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableBox>
      )}
    </Page>
  );
}

type AuditPage = { items: AuditEntry[]; next_cursor: string | null };

export function Audit() {
  const org = useOrg();
  // The newest page follows the live counter; older pages, once loaded, stay as they were.
  const first = useData(() => get<AuditPage>(`/organizations/${org.id}/audit?limit=50`), [org.id, org.tick]);
  const [older, setOlder] = useState<AuditEntry[]>([]);
  const [cursor, setCursor] = useState<string | null | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const next = cursor === undefined ? first.data?.next_cursor : cursor;
  const more = async () => {
    if (!next) return;
    try {
      const page = await get<AuditPage>(`/organizations/${org.id}/audit?limit=50&cursor=${encodeURIComponent(next)}`);
      setOlder((o) => [...o, ...page.items]);
      setCursor(page.next_cursor);
    } catch (err) {
      setError(err);
    }
  };
  const seen = new Set<string>();
  const items = [...(first.data?.items ?? []), ...older].filter((e) => !seen.has(e.id) && seen.add(e.id) !== undefined);
  return (
    <Page title="Audit log">
      <ErrorBox error={first.error ?? error} />
      {first.data === undefined ? (
        first.loading && <Loading what="the audit log" />
      ) : (
        <TableBox label="Audit log">
          <table>
            <caption>Changes to this organization, newest first</caption>
            <thead>
              <tr>
                <th scope="col">At</th>
                <th scope="col">Who</th>
                <th scope="col">Action</th>
                <th scope="col">Target</th>
                <th scope="col">Detail</th>
              </tr>
            </thead>
            <tbody>
              {items.map((e) => (
                <tr key={e.id}>
                  <td>{time(e.at)}</td>
                  <td>
                    {e.actor.name} <span class="muted">({e.actor.kind})</span>
                  </td>
                  <td class="nowrap">
                    <code>{e.action}</code>
                  </td>
                  <td>
                    {e.target.type}
                    {e.target.name ? ` ${e.target.name}` : ""}
                  </td>
                  <td>
                    <Detail detail={e.detail} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableBox>
      )}
      {next && (
        <button type="button" class="secondary" onClick={more}>
          Load older entries
        </button>
      )}
    </Page>
  );
}

/** An audit entry's detail as "key: value" lines (nested values as compact JSON). */
function Detail({ detail }: { detail: unknown }) {
  if (!detail || typeof detail !== "object") return null;
  const entries = Object.entries(detail as Record<string, unknown>).filter(([, v]) => v !== null && v !== undefined);
  if (entries.length === 0) return null;
  return (
    <ul class="detail">
      {entries.map(([k, v]) => (
        <li key={k}>
          <span class="muted">{k.replace(/_/g, " ")}:</span> {typeof v === "object" ? JSON.stringify(v) : String(v)}
        </li>
      ))}
    </ul>
  );
}
