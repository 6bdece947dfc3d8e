/**
 * What can be done to a key from the list or its page: edit, switch off or on, delete (after
 * a confirmation). Renders the buttons and the dialogs they open.
 */
import { useState } from "react";
import { describeError } from "../../api/client";
import { useClient } from "../../api/context";
import type { Key } from "../../api/types";
import { ConfirmDialog } from "../../components/ConfirmDialog";
import { Icon } from "../../components/Icon";
import { useToast } from "../../components/Toast";
import { EditKeyDialog } from "./EditKeyDialog";

interface Props {
  keyData: Key;
  onChanged: (key: Key) => void;
  onDeleted: (id: number) => void;
  /** Icon buttons (table rows) or labelled buttons (key page). */
  variant: "icons" | "buttons";
}

export function KeyActions({ keyData, onChanged, onDeleted, variant }: Props) {
  const client = useClient();
  const notify = useToast();
  const [open, setOpen] = useState<"edit" | "delete" | "deactivate" | null>(null);
  const [busy, setBusy] = useState(false);

  const activate = async () => {
    setBusy(true);
    try {
      onChanged(await client.activateKey(keyData.id));
      notify(`“${keyData.name}” is active again.`);
    } catch (e) {
      notify(describeError(e), "error");
    } finally {
      setBusy(false);
    }
  };

  const icons = variant === "icons";
  const button = (icon: Parameters<typeof Icon>[0]["name"], label: string, onClick: () => void, extra = "") =>
    icons ? (
      <button type="button" className={`icon-button ${extra}`} aria-label={`${label} ${keyData.name}`} title={label} onClick={onClick} disabled={busy}>
        <Icon name={icon} />
      </button>
    ) : (
      <button type="button" className={`btn btn-secondary ${extra}`} onClick={onClick} disabled={busy}>
        <Icon name={icon} /> {label}
      </button>
    );

  return (
    <div className={icons ? "row-actions" : "page-actions"}>
      {button("edit", "Edit", () => setOpen("edit"))}
      {keyData.is_active
        ? button("pause", "Deactivate", () => setOpen("deactivate"))
        : button("play", "Activate", activate)}
      {button("trash", "Delete", () => setOpen("delete"), "danger-hover")}

      {open === "edit" && (
        <EditKeyDialog
          keyData={keyData}
          onClose={() => setOpen(null)}
          onSaved={(key) => {
            setOpen(null);
            onChanged(key);
            notify(`Saved “${key.name}”.`);
          }}
        />
      )}
      {open === "deactivate" && (
        <ConfirmDialog
          title={`Deactivate “${keyData.name}”?`}
          confirmLabel="Deactivate"
          onClose={() => setOpen(null)}
          onConfirm={async () => {
            const key = await client.deactivateKey(keyData.id);
            setOpen(null);
            onChanged(key);
            notify(`“${key.name}” is deactivated.`);
          }}
        >
          <p>Requests with this key are refused at once (401). Its limits and usage are kept; you can activate it again later.</p>
        </ConfirmDialog>
      )}
      {open === "delete" && (
        <ConfirmDialog
          title={`Delete “${keyData.name}”?`}
          confirmLabel="Delete key"
          danger
          onClose={() => setOpen(null)}
          onConfirm={async () => {
            await client.deleteKey(keyData.id);
            setOpen(null);
            onDeleted(keyData.id);
            notify(`Deleted “${keyData.name}”.`);
          }}
        >
          <p>
            The key <code>{keyData.key_prefix}…</code> stops working at once, and its usage history is deleted with it. This cannot be undone.
          </p>
          {keyData.is_active && <p className="muted">To stop it for now and keep its history, deactivate it instead.</p>}
        </ConfirmDialog>
      )}
    </div>
  );
}
