/** The list of teams with their shared limits and usage, and the dialog that creates one. */
import { useState } from "react";
import { useClient, useResource } from "../../api/context";
import type { Team } from "../../api/types";
import { Icon } from "../../components/Icon";
import { PageHeader } from "../../components/PageHeader";
import { EmptyState, ErrorState } from "../../components/States";
import { useToast } from "../../components/Toast";
import { useTitle } from "../../router";
import { CreateTeamDialog } from "./TeamDialogs";
import { TeamTable } from "./TeamTable";

export function TeamsPage() {
  useTitle("Teams");
  const client = useClient();
  const notify = useToast();
  const teams = useResource(() => client.listTeams(), [client]);
  const [creating, setCreating] = useState(false);

  const replace = (team: Team) => teams.setData((teams.data ?? []).map((t) => (t.id === team.id ? team : t)));
  const remove = (id: number) => teams.setData((teams.data ?? []).filter((t) => t.id !== id));
  const add = (team: Team) => teams.setData([...(teams.data ?? []), team]);

  return (
    <>
      <PageHeader
        title="Teams"
        description="A team is one budget shared by several keys: its limits count the requests of all its keys together, on top of each key's own."
        actions={
          <>
            <button type="button" className="btn btn-secondary" onClick={() => void teams.reload()} disabled={teams.loading}>
              <Icon name="refresh" className={teams.loading && teams.data ? "spin" : undefined} /> Refresh
            </button>
            <button type="button" className="btn btn-primary" onClick={() => setCreating(true)}>
              <Icon name="plus" /> New team
            </button>
          </>
        }
      />

      {teams.error !== undefined && <ErrorState error={teams.error} what="the teams" onRetry={() => void teams.reload()} />}

      {teams.data && teams.data.length === 0 ? (
        <EmptyState
          icon="team"
          title="No teams yet"
          action={
            <button type="button" className="btn btn-primary" onClick={() => setCreating(true)}>
              <Icon name="plus" /> Create the first team
            </button>
          }
        >
          Create a team for a group of keys that should share one budget, e.g. a department's or a project's keys. Then pick the team in
          each key's dialog.
        </EmptyState>
      ) : teams.error === undefined || teams.data ? (
        <section className="card card-flush">
          <TeamTable teams={teams.data} loading={teams.loading} onChanged={replace} onDeleted={remove} />
        </section>
      ) : null}

      {creating && (
        <CreateTeamDialog
          onClose={() => setCreating(false)}
          onCreated={(team) => {
            setCreating(false);
            add(team);
            notify(`Created “${team.name}”.`);
          }}
        />
      )}
    </>
  );
}
