import { useEffect, useState } from "preact/hooks";
import * as api from "./api";
import { useLive } from "./live";
import { match, navigate, usePath } from "./router";
import { can, OrgCtx, SessionContext, useSession, type Session } from "./session";
import type { Me } from "./types";
import { Link, Loading } from "./ui";
import { SignIn, Register } from "./pages/auth";
import { Organizations } from "./pages/organizations";
import { Clusters } from "./pages/clusters";
import { Queue, Running } from "./pages/queue";
import { DeploymentPage } from "./pages/deployment";
import { Submit } from "./pages/submit";
import { Members, Invites, Tokens, Webhooks, WebhookDeliveries, Audit } from "./pages/admin";
import { SettingsPage, UsagePage } from "./pages/fairness";

const LAST_ORG = "hv.org";

export function App() {
  const path = usePath();
  const [me, setMe] = useState<Me | null | undefined>(undefined);

  const reloadMe = async () => {
    const fresh = await api.get<Me>("/auth/me");
    // Unchanged: keep the same object, so nothing re-renders for it.
    setMe((old) => (old && JSON.stringify(old) === JSON.stringify(fresh) ? old : fresh));
    return fresh;
  };

  useEffect(() => {
    const off = api.onSignedOut(() => setMe(null));
    if (api.hasSession()) reloadMe().catch(() => setMe(null));
    else setMe(null);
    return () => {
      off();
    };
  }, []);

  // Keyboard and screen-reader users land on the new page's heading, not the old link.
  useEffect(() => {
    document.getElementById("page-title")?.focus({ preventScroll: false });
  }, [path]);

  if (me === undefined) return <Loading what="the console" />;

  if (me === null) {
    // A deep link survives signing in: only the sign-in pages themselves move on to the start.
    const done = () =>
      reloadMe().then(() => {
        if (path === "/register" || path === "/signin") navigate("/", true);
      });
    const page = path === "/register" ? <Register onDone={done} /> : <SignIn onDone={done} />;
    return (
      <div class="auth-layout">
        <main id="main">{page}</main>
      </div>
    );
  }

  const session: Session = {
    me,
    reloadMe,
    signOut: () => {
      api.logout().then(() => navigate("/", true));
    },
  };
  return (
    <SessionContext.Provider value={session}>
      <Routed path={path} me={me} />
    </SessionContext.Provider>
  );
}

function Routed({ path, me }: { path: string; me: Me }) {
  const orgMatch = match("/o/:org", path.split("/").slice(0, 3).join("/"));
  const orgId = orgMatch?.org;
  const membership = me.organizations.find((o) => o.id === orgId);
  const tick = useLive(membership?.id);

  useEffect(() => {
    if (membership) localStorage.setItem(LAST_ORG, membership.id);
  }, [membership?.id]);

  // A role given or taken by an admin elsewhere changes what this page offers, live too.
  const { reloadMe } = useSession();
  useEffect(() => {
    if (tick > 0) reloadMe().catch(() => undefined);
  }, [tick]);

  // The start page: the last organization used, else the first, else the switcher.
  if (path === "/" || path === "/signin" || path === "/register") {
    const last = localStorage.getItem(LAST_ORG);
    const org = me.organizations.find((o) => o.id === last) ?? me.organizations[0];
    return <Redirect to={org ? `/o/${org.id}/clusters` : "/orgs"} />;
  }

  let page;
  if (path === "/orgs") page = <Organizations />;
  else if (orgId && !membership) page = <NotFound text="This organization does not exist or you are not a member of it." />;
  else if (membership) {
    const rest = "/" + path.split("/").slice(3).join("/");
    const route = (pattern: string) => match(pattern, rest);
    let params;
    if (route("/clusters")) page = <Clusters />;
    else if (route("/queue")) page = <Queue />;
    else if (route("/running")) page = <Running />;
    else if (route("/submit")) page = <Submit />;
    else if ((params = route("/deployments/:id"))) page = <DeploymentPage id={params.id} />;
    else if (route("/members")) page = <Members />;
    else if (route("/usage")) page = <UsagePage />;
    else if (route("/settings")) page = <SettingsPage />;
    else if (route("/admin/invites")) page = <Invites />;
    else if (route("/admin/tokens")) page = <Tokens />;
    else if (route("/admin/webhooks")) page = <Webhooks />;
    else if ((params = route("/admin/webhooks/:id"))) page = <WebhookDeliveries id={params.id} />;
    else if (route("/admin/audit")) page = <Audit />;
    else page = <NotFound text="There is no such page." />;
  } else page = <NotFound text="There is no such page." />;

  const content = membership ? (
    <OrgCtx.Provider value={{ ...membership, ...can(membership.role), tick }}>{page}</OrgCtx.Provider>
  ) : (
    page
  );
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <Header path={path} me={me} orgId={membership?.id} />
      <main id="main">{content}</main>
    </>
  );
}

function Redirect({ to }: { to: string }) {
  useEffect(() => navigate(to, true), [to]);
  return null;
}

function NotFound({ text }: { text: string }) {
  return (
    <>
      <h1 id="page-title" tabIndex={-1}>
        Not found
      </h1>
      <p>{text}</p>
      <p>
        <Link to="/orgs">Your organizations</Link>
      </p>
    </>
  );
}

function Header({ path, me, orgId }: { path: string; me: Me; orgId?: string }) {
  const membership = me.organizations.find((o) => o.id === orgId);
  const rights = membership ? can(membership.role) : { canDeploy: false, isAdmin: false };
  const links: [string, string][] = orgId
    ? [
        ["clusters", "Clusters"],
        ["queue", "Queue"],
        ["running", "Running"],
        ...(rights.canDeploy ? ([["submit", "Submit"]] as [string, string][]) : []),
        ["members", "Members"],
        ["usage", "Usage"],
        ["settings", "Settings"],
        ...(rights.isAdmin
          ? ([
              ["admin/invites", "Invites"],
              ["admin/tokens", "Tokens"],
              ["admin/webhooks", "Webhooks"],
              ["admin/audit", "Audit log"],
            ] as [string, string][])
          : []),
      ]
    : [];
  const onSwitch = (e: Event) => {
    const id = (e.target as HTMLSelectElement).value;
    if (id === "") navigate("/orgs");
    else {
      const section = path.split("/")[3] ?? "clusters";
      const keep = ["clusters", "queue", "running", "submit", "members", "usage", "settings"].includes(section) ? section : "clusters";
      navigate(`/o/${id}/${keep}`);
    }
  };
  const { signOut } = useSession();
  return (
    <header class="top">
      <div class="brand">
        <Link to="/">Hypervisor</Link>
      </div>
      <div class="org-switch">
        <label for="org-switch">Organization</label>
        <select id="org-switch" value={orgId ?? ""} onChange={onSwitch}>
          <option value="">{orgId ? "All organizations…" : "Choose…"}</option>
          {me.organizations.map((o) => (
            <option key={o.id} value={o.id}>
              {o.name} ({o.role})
            </option>
          ))}
        </select>
        <Link to="/orgs" aria-current={path === "/orgs" ? "page" : undefined}>
          Manage
        </Link>
      </div>
      <div class="user">
        <span>{me.username ?? me.name}</span>
        <button type="button" class="secondary" onClick={signOut}>
          Sign out
        </button>
      </div>
      {links.length > 0 && (
        <nav aria-label="Sections">
          <ul>
            {links.map(([to, text]) => {
              const href = `/o/${orgId}/${to}`;
              const current = path === href;
              return (
                <li key={to}>
                  <Link to={href} aria-current={current ? "page" : undefined}>
                    {text}
                  </Link>
                </li>
              );
            })}
          </ul>
        </nav>
      )}
    </header>
  );
}
