import { describe, expect, test } from "vitest";
import { applyEvent, newPairing, waitingForSignIn, waitingForWifi } from "../../src/model";
import type { PairingEvent } from "../../src/ipc";

const st = (id: number, stage: "connect" | "secure" | "signIn" | "handOver" | "exchange", state: "active" | "done"): PairingEvent => ({
  type: "stage",
  pairingId: id,
  stage,
  state,
  detail: null,
  millis: state === "done" ? 10 : null,
});

describe("pairing model", () => {
  test("stages advance and everything before an active stage is done", () => {
    let m = newPairing(1, "Kitchen");
    m = applyEvent(m, st(1, "signIn", "active"))!;
    expect(m.stages.connect.status).toBe("done");
    expect(m.stages.secure.status).toBe("done");
    expect(m.stages.signIn.status).toBe("active");
    expect(waitingForSignIn(m)).toBe(false);
    m = applyEvent(m, { type: "signIn", pairingId: 1, url: "u", automatic: true })!;
    expect(waitingForSignIn(m)).toBe(true);
    m = applyEvent(m, { type: "browserOpened", pairingId: 1 })!;
    expect(m.signIn?.opened).toBe(true);
    m = applyEvent(m, st(1, "signIn", "done"))!;
    expect(waitingForSignIn(m)).toBe(false);
    expect(m.stages.signIn.millis).toBe(10);
  });

  test("events of older attempts are ignored; a newer attempt starts fresh", () => {
    const m = newPairing(2, "Kitchen");
    expect(applyEvent(m, st(1, "connect", "active"))).toBe(m);
    const n = applyEvent(m, st(3, "connect", "active"))!;
    expect(n.id).toBe(3);
    expect(n.stages.connect.status).toBe("active");
  });

  test("a failure marks the active stage and is final", () => {
    let m = applyEvent(newPairing(1, "K"), st(1, "secure", "active"))!;
    m = applyEvent(m, {
      type: "failed",
      pairingId: 1,
      error: { kind: "wrongSetupCode", title: "t", message: "m", retry: "newCode" },
    })!;
    expect(m.stages.secure.status).toBe("failed");
    expect(m.outcome?.type).toBe("failed");
    const after = applyEvent(m, st(1, "handOver", "active"))!;
    expect(after.stages.handOver.status).toBe("pending");
  });

  test("linked completes every stage", () => {
    const m = applyEvent(newPairing(1, "K"), {
      type: "linked",
      pairingId: 1,
      speakerId: "x",
      speakerName: "Kitchen",
      userId: null,
      totalMillis: 1,
    })!;
    expect(Object.values(m.stages).every((s) => s.status === "done")).toBe(true);
    expect(m.outcome?.type).toBe("linked");
  });
});

describe("Wi-Fi step in the model", () => {
  const net = { index: 0, ssid: "Home-5G", signal: 80, secured: true, supported: true, known: false };
  const ask = (lastError: string | null): PairingEvent => ({ type: "wifiChoose", pairingId: 1, networks: [net], lastError, lastNetwork: lastError ? 0 : null });

  test("a question shows the screen; a failure asks again (re-arming it); joined ends it", () => {
    let m = applyEvent(newPairing(1, "Kitchen"), ask(null));
    expect(waitingForWifi(m)).toBe(true);
    expect(m!.wifi!.asked).toBe(1);
    m = applyEvent(m, { type: "wifiProgress", pairingId: 1, detail: "Checking the password" });
    expect(m!.wifi!.progress).toBe("Checking the password");
    m = applyEvent(m, ask("Wrong password for Home-5G"));
    expect(m!.wifi).toMatchObject({ asked: 2, progress: null, lastError: "Wrong password for Home-5G", lastNetwork: 0 });
    expect(waitingForWifi(m)).toBe(true);
    m = applyEvent(m, { type: "wifiJoined", pairingId: 1, detail: "on Home-5G at 192.0.2.20" });
    expect(waitingForWifi(m)).toBe(false);
    m = applyEvent(m, { type: "failed", pairingId: 1, error: { kind: "failure", title: "x", message: "y", retry: "sameCode" } });
    expect(waitingForWifi(m)).toBe(false);
  });
});
