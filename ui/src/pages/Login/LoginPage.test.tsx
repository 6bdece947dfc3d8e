import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { fakeServer, type Handler } from "../../test/fixtures";
import { LoginPage } from "./LoginPage";

function setup(settings: Handler) {
  const server = fakeServer({ "GET /api/settings": settings });
  const onSignedIn = vi.fn();
  render(<LoginPage onSignedIn={onSignedIn} clientOptions={{ fetch: server.fetch }} />);
  return { server, onSignedIn };
}

async function signIn(password: string) {
  await userEvent.type(screen.getByLabelText("Admin password"), password);
  await userEvent.click(screen.getByRole("button", { name: "Sign in" }));
}

describe("LoginPage error states", () => {
  it("says the password is wrong on 401, and keeps nothing", async () => {
    const { onSignedIn, server } = setup(() => ({ status: 401, body: { error: "missing or wrong admin password" } }));
    await signIn("guess");
    expect(await screen.findByRole("alert")).toHaveTextContent("Wrong password");
    expect(onSignedIn).not.toHaveBeenCalled();
    expect(server.calls[0].headers.Authorization).toBe("Bearer guess");
    expect(window.sessionStorage.length + window.localStorage.length).toBe(0);
  });

  it("says how long to wait when the address is throttled", async () => {
    setup(() => ({ status: 429, body: { error: "too many failed login attempts" }, headers: { "Retry-After": "42" } }));
    await signIn("guess");
    expect(await screen.findByRole("alert")).toHaveTextContent("Try again in 42 s");
  });

  it("says the admin API is unreachable when nothing answers", async () => {
    setup(() => "network-error");
    await signIn("pw");
    expect(await screen.findByRole("alert")).toHaveTextContent("Cannot reach the admin API");
  });

  it("treats a proxy's non-JSON 502 as unreachable too", async () => {
    const server = fakeServer({});
    const fetch502 = async () => new Response("Bad Gateway", { status: 502 });
    render(<LoginPage onSignedIn={vi.fn()} clientOptions={{ fetch: fetch502 as typeof fetch }} />);
    void server;
    await signIn("pw");
    expect(await screen.findByRole("alert")).toHaveTextContent("Cannot reach the admin API");
  });

  it("hands over an accepted password", async () => {
    const { onSignedIn } = setup(() => ({ status: 200, body: {} }));
    await signIn("right");
    expect(onSignedIn).toHaveBeenCalledWith("right");
  });
});
