/**
 * What can be done to a team from the list or its page: edit, and delete after a confirmation.
 * The API refuses to delete a team that still has keys (409); the dialog then shows its message.
 */
import { useState } from "react";
import { useClient } from "../../api/context";
import type { Team } from "../../api/types";
import { ConfirmDialog } from "../../components/ConfirmDialog";
import { Icon, type IconName } from "../../components/Icon";
import { useToast } from "../../components/Toast";
import { formatNumber } from "../../format";
import { EditTeamDialog } from "./TeamDialogs";

interface Props {
  team: Team;
  onChanged: (team: Team) => void;
  onDeleted: (id: number) => void;
  /** Icon buttons (table rows) or labelled buttons (team page). */
  variant: "icons" | "buttons";
}

export function TeamActions({ team, onChanged, onDeleted, variant }: Props) {
  const client = useClient();
  const notify = useToast();
  const [open, setOpen] = useState<"edit" | "delete" | null>(null);

  const icons = variant === "icons";
  const button = (icon: IconName, label: string, onClick: () => void, extra = "") =>
    icons ? (
      <button type="button" className={`icon-button ${extra}`} aria-label={`${label} ${team.name}`} title={label} onClick={onClick}>
        <Icon name={icon} />
      </button>
    ) : (
      <button type="button" className={`btn btn-secondary ${extra}`} onClick={onClick}>
        <Icon name={icon} /> {label}
      </button>
    );

  return (
    <div className={icons ? "row-actions" : "page-actions"}>
      {button("edit", "Edit", () => setOpen("edit"))}
      {button("trash", "Delete", () => setOpen("delete"), "danger-hover")}

      {open === "edit" && (
        <EditTeamDialog
          team={team}
          onClose={() => setOpen(null)}
          onSaved={(saved) => {
            setOpen(null);
            onChanged(saved);
            notify(`Saved “${saved.name}”.`);
          }}
        />
      )}
      {open === "delete" && (
        <ConfirmDialog
          title={`Delete “${team.name}”?`}
          confirmLabel="Delete team"
          danger
          onClose={() => setOpen(null)}
          onConfirm={async () => {
            await client.deleteTeam(team.id);
            setOpen(null);
            onDeleted(team.id);
            notify(`Deleted “${team.name}”.`);
          }}
        >
          {team.key_count > 0 ? (
            <p>
              The team still has {formatNumber(team.key_count)} {team.key_count === 1 ? "key" : "keys"}. A team can be deleted only once
              none is left: move them to another team (or none) in each key's Edit dialog, or delete them.
            </p>
          ) : (
            <p>The team and its limits are deleted. No key belongs to it. This cannot be undone.</p>
          )}
        </ConfirmDialog>
      )}
    </div>
  );
}
