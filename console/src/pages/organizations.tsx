import { useState } from "preact/hooks";
import { post } from "../api";
import { ApiError } from "../api";
import { navigate } from "../router";
import { useSession } from "../session";
import { CopyButton, ErrorBox, Field, Link, Page, TableBox } from "../ui";

type Created = { id: string; name: string; invite_code: string };
type Joined = { organization: { id: string; name: string }; role: string };

export function Organizations() {
  const { me, reloadMe } = useSession();
  const [name, setName] = useState("");
  const [code, setCode] = useState("");
  const [createError, setCreateError] = useState<unknown>(null);
  const [joinError, setJoinError] = useState<unknown>(null);
  const [created, setCreated] = useState<Created | null>(null);
  const [joined, setJoined] = useState<Joined | null>(null);

  const create = async (e: Event) => {
    e.preventDefault();
    setCreateError(null);
    try {
      const org = await post<Created>("/organizations", { name });
      setCreated(org);
      setName("");
      await reloadMe();
    } catch (err) {
      setCreateError(err);
    }
  };
  const join = async (e: Event) => {
    e.preventDefault();
    setJoinError(null);
    try {
      const result = await post<Joined>("/organizations/join", { invite_code: code.trim() });
      setJoined(result);
      setCode("");
      await reloadMe();
      navigate(`/o/${result.organization.id}/clusters`);
    } catch (err) {
      setJoinError(err);
    }
  };
  const err = (e: unknown, f: string) => (e instanceof ApiError ? e.forField(f) : undefined);

  return (
    <Page title="Organizations">
      {me.organizations.length === 0 ? (
        <p>You are not a member of any organization yet: create one, or join one with an invite code.</p>
      ) : (
        <TableBox label="Your organizations">
          <table>
            <caption>Your organizations</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Your role</th>
              </tr>
            </thead>
            <tbody>
              {me.organizations.map((o) => (
                <tr key={o.id}>
                  <td>
                    <Link to={`/o/${o.id}/clusters`}>{o.name}</Link>
                  </td>
                  <td>{o.role}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableBox>
      )}
      <div class="columns">
        <section class="card">
          <h2>Create an organization</h2>
          <form onSubmit={create} noValidate>
            <Field label="Organization name" name="name" value={name} onInput={setName} required error={err(createError, "name")} />
            <ErrorBox error={createError} />
            <button type="submit">Create organization</button>
          </form>
          {created && (
            <div class="notice" role="status">
              <p>
                Created <Link to={`/o/${created.id}/clusters`}>{created.name}</Link>; you are its admin. Share this developer invite code with your team:
              </p>
              <p>
                <code class="secret">{created.invite_code}</code> <CopyButton text={created.invite_code} label="Copy invite code" />
              </p>
            </div>
          )}
        </section>
        <section class="card">
          <h2>Join with an invite code</h2>
          <form onSubmit={join} noValidate>
            <Field label="Invite code" name="invite_code" value={code} onInput={setCode} required autocomplete="off" error={err(joinError, "invite_code")} />
            <ErrorBox error={joinError} />
            <button type="submit">Join organization</button>
          </form>
          {joined && (
            <p role="status">
              Joined {joined.organization.name} as {joined.role}.
            </p>
          )}
        </section>
      </div>
    </Page>
  );
}
