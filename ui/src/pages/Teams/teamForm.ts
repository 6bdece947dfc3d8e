/**
 * The values of the team form (create and edit) as typed, and how they become request bodies.
 * The budget (limits, pacing, priority, models) is typed and checked as in the key form
 * (`../Keys/keyForm.ts`): thousands separators, `1.5M`, GPU seconds with up to 3 decimals, the
 * errors under their field.
 */
import type { CreateTeamBody, Team, TeamUpdateBody } from "../../api/types";
import {
  budgetChanges,
  budgetOf,
  emptyBudget,
  parseBudget,
  type BudgetFormErrors,
  type BudgetFormValues,
  type ParsedBudget,
} from "../Keys/keyForm";

/** The API's longest team name. */
export const TEAM_NAME_MAX = 200;

export interface TeamFormValues extends BudgetFormValues {
  name: string;
  description: string;
}

export type TeamFormErrors = BudgetFormErrors & Partial<Record<"name", string>>;

export function emptyTeamForm(): TeamFormValues {
  return { name: "", description: "", ...emptyBudget() };
}

export function teamFormOf(team: Team): TeamFormValues {
  return { name: team.name, description: team.description ?? "", ...budgetOf(team) };
}

export interface ParsedTeamForm extends ParsedBudget {
  name: string;
  /** `null` = none. */
  description: string | null;
}

export function parseTeamForm(values: TeamFormValues): { parsed?: ParsedTeamForm; errors: TeamFormErrors } {
  const errors: TeamFormErrors = {};
  const name = values.name.trim();
  if (!name) errors.name = "Give the team a name, e.g. the group whose keys share it.";
  else if (name.length > TEAM_NAME_MAX) errors.name = `At most ${TEAM_NAME_MAX} characters.`;
  const budget = parseBudget(values, errors);
  if (!budget || Object.keys(errors).length > 0) return { errors };
  const description = values.description.trim();
  return { parsed: { name, description: description === "" ? null : description, ...budget }, errors };
}

export function createTeamBody(p: ParsedTeamForm): CreateTeamBody {
  return {
    name: p.name,
    description: p.description,
    ...p.limits,
    ...p.pacing,
    allowed_models: p.allowedModels,
  };
}

/** Only what changed (`PATCH /api/teams/{id}`); `undefined` when nothing did. */
export function teamUpdateBody(team: Team, p: ParsedTeamForm): TeamUpdateBody | undefined {
  const body: TeamUpdateBody = { ...budgetChanges(team, p) };
  if (p.name !== team.name) body.name = p.name;
  if (p.description !== (team.description ?? null)) body.description = p.description;
  if (JSON.stringify(team.allowed_models ?? null) !== JSON.stringify(p.allowedModels)) body.allowed_models = p.allowedModels;
  return Object.keys(body).length > 0 ? body : undefined;
}
