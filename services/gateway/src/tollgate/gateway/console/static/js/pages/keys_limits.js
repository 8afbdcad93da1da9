// A key's rate limits on the Keys page (docs/limits.md): its tier and overrides and what they come
// to; a platform admin key sets them (POST /admin/api-key/limits), an organisation admin's key reads
// its own organisation's keys' (GET /admin/api-key/limits).
import { api } from "../api.js";
import { listTiers } from "./limits.js";
import { limitsPanel } from "./limits_view.js";

export async function keyLimitsPanel(key, ctx) {
  const panel = await limitsPanel({
    id: "key-limits",
    heading: `Rate limits of “${key.name}”`,
    read: () => api(`/admin/api-key/limits?id=${key.id}`),
    target: { id: key.id },
    canEdit: ctx.isPlatformAdmin,
    tiers: listTiers,
    closable: true,
  });
  panel.dataset.key = key.name;
  return panel;
}
