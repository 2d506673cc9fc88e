-- mailbridge push for Dovecot 2.3: tells mailbridge at once when mail is delivered,
-- so that it syncs the mailbox without waiting for IMAP IDLE (which Dovecot 2.3
-- reports only after a fixed half-second delay) or for the next poll.
--
-- Loaded by Dovecot's push_notification Lua driver; see docs/DOVECOT-PUSH.md for the
-- configuration. Plugin settings read per user (global in `plugin { }`, or per user
-- from the userdb):
--   mailbridge_push_url    the profile's mail-server event URL (required; without it
--                          nothing is sent)
--   mailbridge_push_token  an API token of the organization (sent as a Bearer token)
--   mailbridge_push_user   the name mailbridge knows the mailbox by (default: the
--                          Dovecot user name), e.g. `%n@example.org`
--
-- One POST per transaction and folder, after Dovecot committed the delivery, with
-- the same JSON fields as Dovecot's OX driver: event, user, folder,
-- imap-uidvalidity, imap-uid. A failure is logged and never fails the delivery:
-- mailbridge's polling stays the safety net.

local TIMEOUT_MSECS = 2000

local function json_string(s)
  s = tostring(s or "")
  s = s:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    return string.format("\\u%04x", c:byte())
  end)
  return '"' .. s .. '"'
end

local function setting(user, name)
  local v = user:plugin_getenv(name)
  if v == nil or v == "" then return nil end
  return v
end

function dovecot_lua_notify_begin_txn(user)
  return {
    url = setting(user, "mailbridge_push_url"),
    token = setting(user, "mailbridge_push_token"),
    name = setting(user, "mailbridge_push_user") or user.username,
    folders = {},
    order = {},
  }
end

function dovecot_lua_notify_event_message_new(ctx, event)
  local f = ctx.folders[event.mailbox]
  if f == nil then
    table.insert(ctx.order, event.mailbox)
    ctx.folders[event.mailbox] = { uidvalidity = event.uid_validity, uid = event.uid }
  elseif event.uid > f.uid then
    f.uid = event.uid
  end
end

function dovecot_lua_notify_end_txn(ctx)
  if ctx.url == nil or #ctx.order == 0 then return end
  local client = dovecot.http.client({ timeout = TIMEOUT_MSECS, max_attempts = 1 })
  for _, folder in ipairs(ctx.order) do
    local f = ctx.folders[folder]
    local body = string.format(
      '{"event":"messageNew","user":%s,"folder":%s,"imap-uidvalidity":%d,"imap-uid":%d}',
      json_string(ctx.name), json_string(folder), f.uidvalidity, f.uid)
    local request = client:request({ url = ctx.url, method = "POST" })
    request:add_header("Content-Type", "application/json")
    if ctx.token ~= nil then
      request:add_header("Authorization", "Bearer " .. ctx.token)
    end
    request:set_payload(body)
    local response = request:submit()
    local status = response:status()
    if status < 200 or status >= 300 then
      dovecot.i_warning(string.format("mailbridge push for %s/%s: HTTP %d %s",
        ctx.name, folder, status, tostring(response:reason())))
    end
  end
end
