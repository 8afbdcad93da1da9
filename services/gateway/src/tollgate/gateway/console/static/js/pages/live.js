// The gateway's /ws (seed 001 SloughGPT, docs/sloughgpt.md) for the console's fine-tuning view: the
// first message authenticates with the session's credential, then the `training` channel is
// subscribed; each training event of the followed job calls onEvent. A closed socket is opened again
// once, resuming after the last event id seen; when that fails too, onState(false, why) tells the
// page to fall back to polling. The CSP's connect-src 'self' covers ws(s):// of the same origin.
import { freshCredential } from "../api.js";

export function followTraining(jobId, { onEvent, onState }) {
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
  let socket = null;
  let lastId = null;
  let ok = false;
  let retried = false;
  let closed = false;

  function connect() {
    socket = new WebSocket(url);
    socket.addEventListener("open", async () => {
      const token = await freshCredential();
      if (socket.readyState !== WebSocket.OPEN) return;
      socket.send(JSON.stringify(lastId ? { type: "auth", token, last_event_id: lastId } : { type: "auth", token }));
    });
    socket.addEventListener("message", (m) => {
      let msg;
      try {
        msg = JSON.parse(m.data);
      } catch {
        return;
      }
      if (msg.type === "authenticated") {
        socket.send(JSON.stringify({ type: "subscribe", channels: ["training"] }));
      } else if (msg.type === "subscribed") {
        ok = true;
        retried = false;
        onState(true);
      } else if (msg.channel === "training" && msg.id) {
        lastId = msg.id;
        if (msg.data && msg.data.job_id === jobId) onEvent(msg);
      }
    });
    socket.addEventListener("close", (e) => {
      const was = ok;
      ok = false;
      if (closed) return;
      if (was && !retried) {
        retried = true; // once: a gateway restart (1012) or a dropped connection, resumed by lastId
        setTimeout(() => { if (!closed) connect(); }, 1000);
        onState(false, "reconnecting");
        return;
      }
      onState(false, e.code ? `the connection closed, code ${e.code}` : "the connection failed");
    });
  }

  connect();
  return {
    ok: () => ok,
    close() {
      closed = true;
      if (socket) socket.close(1000);
    },
  };
}
