import { describe, expect, it } from "vitest";
import { actionOf, changesOf, fieldLabel, teamOf, valueText } from "./auditFormat";

describe("the audit trail in words", () => {
  it("lists a creation's settings that have a value, after-side only", () => {
    const changes = changesOf(null, {
      name: "alice-laptop",
      key_prefix: "sk-AbCd1234",
      is_active: true,
      expires_at: null,
      daily_token_limit: 50_000,
      monthly_token_limit: null,
      allowed_models: ["llama3", "qwen3:8b"],
    });
    expect(changes.map((c) => [c.label, c.before, c.after])).toEqual([
      ["Name", undefined, "alice-laptop"],
      ["Prefix", undefined, "sk-AbCd1234…"],
      ["Status", undefined, "active"],
      ["Tokens per day", undefined, "50,000"],
      ["Models", undefined, "llama3, qwen3:8b"],
    ]);
  });

  it("says what null means for each field", () => {
    expect(valueText("daily_request_limit", null)).toBe("no limit");
    expect(valueText("requests_per_minute", null)).toBe("no limit");
    expect(valueText("expires_at", null)).toBe("never");
    expect(valueText("allowed_models", null)).toBe("all local models");
    expect(valueText("allow_web_search", false)).toBe("not allowed");
    expect(fieldLabel("allow_web_search")).toBe("Web search");
    expect(valueText("old_secret_valid_until", null)).toBe("stops at once");
    expect(valueText("ollama_urls", null)).toBe("from configuration");
    expect(valueText("something_new", null)).toBe("none");
    expect(valueText("expires_at", "2027-01-13T19:45:00+01:00")).toBe("13 Jan 2027, 19:45 UTC+01:00");
    expect(valueText("ollama_urls", ["http://a:11434", "http://b:11434"])).toBe("http://a:11434, http://b:11434");
  });

  it("lists the fields in the key page's order, not the API's alphabetical one", () => {
    const deleted = changesOf(
      { daily_token_limit: 10_000, is_active: false, key_prefix: "sk-8y8S1LA6", name: "bob-notebook", priority: 1, zz_new: 1, a_new: 2 },
      null,
    );
    expect(deleted.map((c) => c.label)).toEqual(["Name", "Prefix", "Status", "Tokens per day", "Priority", "zz_new", "a_new"]);
  });

  it("shows a field only one side names, and values that are not objects whole", () => {
    expect(changesOf({ key_prefix: "sk-old" }, { key_prefix: "sk-new", old_secret_valid_until: null })).toEqual([
      { field: "key_prefix", label: "Prefix", before: "sk-old…", after: "sk-new…" },
      { field: "old_secret_valid_until", label: "Old secret", before: undefined, after: "stops at once" },
    ]);
    expect(changesOf("edited by hand", null)).toEqual([{ field: "value", label: "Value", before: '"edited by hand"', after: undefined }]);
  });

  it("shows GPU-time limits in seconds, exactly, and a GPU-time alert's milliseconds as seconds", () => {
    expect(changesOf({ daily_gpu_seconds_limit: null }, { daily_gpu_seconds_limit: 1.5 })).toEqual([
      { field: "daily_gpu_seconds_limit", label: "GPU seconds per day", before: "no limit", after: "1.5 s" },
    ]);
    expect(valueText("monthly_gpu_seconds_limit", 36_000.125)).toBe("36,000.125 s");
    const alert = changesOf(null, { limit: "daily_gpu_seconds", threshold: 0.8, used: 2_900_500, limit_value: 3_600_000, period: "2026-12-01" });
    expect(alert.map((c) => [c.label, c.after])).toEqual([
      ["Limit", "GPU seconds per day"],
      ["Threshold", "80%"],
      ["Used", "2,900.5 s"],
      ["Limit value", "3,600 s"],
      ["Period", "2026-12-01"],
    ]);
    // Other alerts count tokens or requests, as they are.
    expect(changesOf(null, { limit: "daily_tokens", used: 40_000 }).map((c) => c.after)).toEqual(["Tokens per day", "40,000"]);
  });

  it("names the actions, and shows an unknown one as it is", () => {
    expect(actionOf("key.limits_changed").label).toBe("Limits changed");
    expect(actionOf("key.exported")).toEqual({ label: "key.exported", tone: "info" });
  });

  it("reads team entries: the team they are about, only what changed, a key's team by name", () => {
    expect(actionOf("team.created")).toEqual({ label: "Team created", tone: "add" });
    expect(actionOf("team.edited").label).toBe("Team edited");
    expect(actionOf("team.deleted")).toEqual({ label: "Team deleted", tone: "remove" });
    const edited = {
      action: "team.edited",
      before: { team_id: 3, name: "data", daily_request_limit: 1_000, description: "old" },
      after: { team_id: 3, name: "data", daily_request_limit: 2_000, description: null },
    };
    expect(teamOf(edited)).toEqual({ id: 3, name: "data" });
    expect(changesOf(edited.before, edited.after).map((c) => [c.label, c.before, c.after])).toEqual([
      ["Description", "old", "none"],
      ["Requests per day", "1,000", "2,000"],
    ]);
    expect(teamOf({ action: "team.deleted", before: { team_id: 4, name: "old-team" }, after: null })).toEqual({ id: 4, name: "old-team" });
    expect(teamOf({ action: "key.edited", before: { team: null }, after: { team: "data" } })).toBeNull();
    expect(changesOf({ team: null }, { team: "data" }).map((c) => [c.label, c.before, c.after])).toEqual([["Team", "no team", "data"]]);
  });
});
