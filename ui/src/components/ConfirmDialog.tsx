/** "Are you sure?" for destructive actions; the confirm button shows progress and errors stay inside. */
import { useState, type ReactNode } from "react";
import { describeError } from "../api/client";
import { Dialog } from "./Dialog";
import { ErrorNote } from "./States";

interface ConfirmDialogProps {
  title: string;
  children: ReactNode;
  confirmLabel: string;
  danger?: boolean;
  onConfirm: () => Promise<void>;
  onClose: () => void;
}

export function ConfirmDialog({ title, children, confirmLabel, danger, onConfirm, onClose }: ConfirmDialogProps) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const confirm = async () => {
    setBusy(true);
    setError(undefined);
    try {
      await onConfirm();
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };
  return (
    <Dialog
      title={title}
      onClose={onClose}
      size="small"
      role="alertdialog"
      initialFocus=".dialog-footer .btn-secondary"
      footer={
        <>
          <button type="button" className="btn btn-secondary" onClick={onClose}>
            Cancel
          </button>
          <button type="button" className={danger ? "btn btn-danger" : "btn btn-primary"} onClick={confirm} disabled={busy}>
            {busy ? "Working…" : confirmLabel}
          </button>
        </>
      }
    >
      {children}
      {error !== undefined && <ErrorNote>{describeError(error)}</ErrorNote>}
    </Dialog>
  );
}
