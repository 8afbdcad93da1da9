// The Keys page's admin parts (an admin key: a platform admin's, or a team organisation admin's):
// a key's model grants and settings, and groups with their models. Only auth's /admin/* routes
// (docs/identity.md, "Groups and model authorisation"); what they refuse is shown in plain words.
import { api } from "../api.js";
import { busy, empty, h, notice, secondPress, table, when } from "../ui.js";

const PLAIN = {
  grant_would_widen: "An organisation admin may only narrow what a key may call; widening it needs a platform admin key.",
  platform_admin_required: "Only a platform admin key may do that.",
  group_in_use: "Active keys are still in this group: move or revoke them first.",
  group_name_taken: "Another group already has that name.",
  group_not_found: "That group no longer exists.",
  api_key_not_found: "That key no longer exists.",
  permission_denied: "The key you signed in with does not have the permission for this.",
};
const plain = (err) => PLAIN[err.reason] || PLAIN[err.code] || err.message;

let catalog = null; // the model names this credential can see, for the pickers
async function modelNames() {
  if (!catalog) catalog = api("/v1/models").then((r) => r.data.map((m) => m.id)).catch(() => []);
  return catalog;
}

async function modelPicker(id) {
  const names = await modelNames();
  const list = h("datalist", { id: `${id}-list` }, names.map((n) => h("option", { value: n })));
  return [h("input", { name: "model", id, list: `${id}-list`, required: true, maxlength: 200, placeholder: "model name" }), list];
}

function grantsTable(rows, removeLabel, onRemove) {
  return rows.length ? table([
    { label: "Model", value: (g) => h("code", {}, g.model) },
    { label: "Granted", value: (g) => when(g.created_at) },
    onRemove ? { label: "", value: (g) => h("button", { type: "button", class: "danger", "data-deauthorize": g.model,
      "aria-label": `${removeLabel} ${g.model}`, onclick: (e) => onRemove(g.model, e.currentTarget) }, "Remove") } : null,
  ].filter(Boolean), rows) : null;
}

// A key's grants and its group's, and a form to grant more.
export async function keyModelsPanel(key, say) {
  const box = h("div", { class: "panel key-panel", id: "key-models", "data-key": key.name });
  const reload = async () => {
    const info = await api(`/admin/api-key/models?key_id=${key.id}`);
    const [input, list] = await modelPicker("grant-model");
    const submit = h("button", { type: "submit" }, "Grant");
    const form = h("form", { class: "row", id: "grant-key-model", onsubmit: async (e) => {
      e.preventDefault();
      try {
        const done = await busy(submit, "Granting…", () => api("/admin/api-key/models/authorize", {
          method: "POST", body: { key_id: key.id, models: [input.value.trim()] } }));
        say("ok", done.changed.length ? `“${key.name}” may now call ${done.changed.join(", ")}.` : "Already granted.");
        await reload();
      } catch (err) {
        say("error", plain(err));
      }
    } }, h("label", {}, "Grant a model to this key", input, list), submit);
    const remove = async (model, button) => {
      try {
        await busy(button, "Removing…", () => api("/admin/api-key/models/deauthorize", {
          method: "POST", body: { key_id: key.id, models: [model] } }));
        say("ok", `${model} is no longer granted to “${key.name}”.`);
        await reload();
      } catch (err) {
        say("error", plain(err));
      }
    };
    const own = grantsTable(info.data, "Remove the grant of", remove);
    const group = grantsTable(info.group_models, "", null);
    box.replaceChildren(...[
      h("h3", {}, `Models of “${key.name}”`),
      h("p", { id: "key-restricted" }, info.restricted
        ? "Restricted: it may call only the models granted to it or to its group."
        : "Unrestricted: nothing is granted to it or its group, so it may call every model. Granting one restricts it."),
      own || empty("No models granted to the key itself."), form,
      h("h4", {}, info.group_id ? `Granted to its group #${info.group_id}` : "It is in no group"),
      group || (info.group_id ? empty("Nothing granted to its group.") : null),
      h("button", { type: "button", class: "secondary", onclick: () => box.remove() }, "Close"),
    ].filter(Boolean));
  };
  box.append(h("p", { class: "loading" }, "Loading the key's models…"));
  reload().catch((err) => box.replaceChildren(notice("error", plain(err))));
  return box;
}

// What the admin routes let one edit: name and month quota; role and group for a platform admin.
// Permissions and expiry have no admin route to change them (docs/console.md, "What is left").
export function keyEditPanel(key, ctx, groups, say, onSaved) {
  const name = h("input", { name: "name", required: true, maxlength: 100, value: key.name });
  const quota = h("input", { name: "month_quota", type: "number", min: 0, step: "0.01", value: key.month_quota || 0 });
  const role = h("select", { name: "role" }, ["user", "admin"].map((r) => h("option", { value: r, selected: r === key.role }, r)));
  const group = groupSelect(groups, key.group_id);
  const submit = h("button", { type: "submit" }, "Save");
  const form = h("form", { class: "row", id: "edit-key", onsubmit: async (e) => {
    e.preventDefault();
    const body = { id: key.id, name: name.value, month_quota: Number(quota.value || 0) };
    if (ctx.isPlatformAdmin) {
      body.role = role.value;
      body.group_id = group.value ? Number(group.value) : null;
    }
    try {
      await busy(submit, "Saving…", () => api("/admin/api-key/update", { method: "POST", body }));
      say("ok", `“${body.name}” was saved.`);
      await onSaved();
    } catch (err) {
      say("error", plain(err));
    }
  } }, h("label", {}, "Name", name), h("label", {}, "Month quota (credits, 0 = none)", quota),
  ctx.isPlatformAdmin ? [h("label", {}, "Role", role), h("label", {}, "Group", group)] : null, submit);
  return h("div", { class: "panel key-panel", id: "key-edit", "data-key": key.name },
    h("h3", {}, `Edit “${key.name}”`), form,
    h("p", { class: "muted" }, ctx.isPlatformAdmin ? "" : "Role and group are changed by a platform admin. ",
      "Permissions and expiry are set when a key is created; no route changes them afterwards."),
    h("button", { type: "button", class: "secondary", onclick: (e) => e.currentTarget.parentElement.remove() }, "Close"));
}

export function groupSelect(groups, current) {
  return h("select", { name: "group_id" }, h("option", { value: "" }, "no group"),
    groups.map((g) => h("option", { value: g.id, selected: g.id === current }, `${g.name} (#${g.id})`)));
}

export async function listGroups() {
  return (await api("/admin/group/list?limit=100")).data;
}

// Groups (platform-wide): a platform admin creates, renames, deletes them and grants their models;
// an organisation admin reads them.
export async function groupsSection(ctx, say, onChanged) {
  const root = h("section", { id: "groups" });
  const detail = h("div");
  const list = h("div");
  const canEdit = ctx.isPlatformAdmin;
  const refresh = async () => {
    const groups = await listGroups();
    list.replaceChildren(groups.length ? table([
      { label: "#", value: (g) => String(g.id), num: true },
      { label: "Name", value: (g) => g.name },
      { label: "Description", value: (g) => g.description || "—" },
      { label: "Created", value: (g) => when(g.created_at) },
      { label: "", value: (g) => h("span", { class: "org-actions" },
        h("button", { type: "button", class: "secondary", "data-group-models": g.name, "aria-label": `Models of group ${g.name}`,
          onclick: () => showModels(g) }, "Models"),
        canEdit ? deleteButton(g) : null) },
    ], groups) : empty("No groups."));
    return groups;
  };
  const deleteButton = (g) => {
    const button = h("button", { type: "button", class: "danger", "data-delete-group": g.name, "aria-label": `Delete group ${g.name}` }, "Delete");
    button.addEventListener("click", async () => {
      if (!secondPress(button, "Confirm delete")) return;
      try {
        await busy(button, "Deleting…", () => api("/admin/group/delete", { method: "POST", body: { id: g.id } }));
        say("ok", `Group “${g.name}” was deleted.`);
        detail.replaceChildren();
        await refresh();
        await onChanged();
      } catch (err) {
        say("error", plain(err));
      }
    });
    return button;
  };
  const showModels = async (g) => {
    detail.replaceChildren(h("p", { class: "loading" }, "Loading the group's models…"));
    try {
      const info = await api(`/admin/group/models?group_id=${g.id}`);
      const remove = canEdit ? async (model, button) => {
        try {
          await busy(button, "Removing…", () => api("/admin/group/models/deauthorize", {
            method: "POST", body: { group_id: g.id, models: [model] } }));
          say("ok", `${model} is no longer granted to group “${g.name}”.`);
          await showModels(g);
        } catch (err) {
          say("error", plain(err));
        }
      } : null;
      const parts = [h("h3", {}, `Models of group “${g.name}”`),
        grantsTable(info.data, "Remove from the group", remove) || empty("No models granted to this group.")];
      if (canEdit) {
        const [input, dl] = await modelPicker("group-model");
        const submit = h("button", { type: "submit" }, "Grant to group");
        parts.push(h("form", { class: "row", id: "grant-group-model", onsubmit: async (e) => {
          e.preventDefault();
          try {
            const done = await busy(submit, "Granting…", () => api("/admin/group/models/authorize", {
              method: "POST", body: { group_id: g.id, models: [input.value.trim()] } }));
            say("ok", done.changed.length ? `Keys in “${g.name}” may now call ${done.changed.join(", ")}.` : "Already granted.");
            await showModels(g);
          } catch (err) {
            say("error", plain(err));
          }
        } }, h("label", {}, "Grant a model to every key in the group", input, dl), submit));
      }
      detail.replaceChildren(h("div", { class: "panel key-panel", id: "group-models", "data-group": g.name }, parts));
    } catch (err) {
      detail.replaceChildren(notice("error", plain(err)));
    }
  };
  const saveForm = () => {
    const name = h("input", { name: "name", required: true, maxlength: 100 });
    const description = h("input", { name: "description", maxlength: 500, placeholder: "optional" });
    const submit = h("button", { type: "submit" }, "Save group");
    return h("form", { class: "row", id: "save-group", onsubmit: async (e) => {
      e.preventDefault();
      try {
        const saved = await busy(submit, "Saving…", () => api("/admin/group/save", {
          method: "POST", body: { name: name.value, description: description.value } }));
        name.value = "";
        description.value = "";
        say("ok", `Group “${saved.name}” (#${saved.id}) was saved.`);
        await refresh();
        await onChanged();
        await showModels(saved);
      } catch (err) {
        say("error", plain(err));
      }
    } }, h("label", {}, "Group name (a new name creates it)", name), h("label", {}, "Description", description), submit);
  };
  root.append(h("h2", {}, "Groups"), h("p", { class: "muted" }, canEdit
    ? "A group's model grants apply to every key in it, across organisations; a key may call what is granted to it or its group."
    : "Groups are platform-wide: a platform admin creates them and grants their models. Here they are read-only."),
  canEdit ? saveForm() : null, list, detail);
  await refresh();
  return root;
}
