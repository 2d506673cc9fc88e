#!/usr/bin/python3
"""SMTP server for mailbridge's tests: authenticated submission that relays into Dovecot.

Started by scripts/test-servers. It accepts mail only after AUTH PLAIN or LOGIN
(530 before, 535 for a bad password; AUTH is allowed without TLS), checks the
credentials against Dovecot's passwd-file (re-read on every AUTH, so users that
tests append are seen at once), then for each message:

1. delivers it by LMTP into Dovecot for every recipient in the local domain
   (recipients elsewhere are only recorded, as if relayed to the outside world);
2. writes the message and its envelope as one JSON file into the sink folder,
   atomically (a hidden temporary file, then a rename), named so that sorting the
   names gives the order of arrival;
3. answers 250.

Delivery happens before the sink file appears, so a test that has seen the sink
file can read the message over IMAP straight away.

Sink file fields: seq, received_at (RFC 3339, UTC), mail_from, rcpt_tos,
auth_user (the Dovecot user name the client authenticated as), data_base64 (the
message exactly as received after dot-unstuffing), lmtp_delivered (recipients
Dovecot accepted) and lmtp_refused (recipient -> [code, reply text]).

Run it with Debian's /usr/bin/python3 (python3-aiosmtpd).
"""

import argparse
import asyncio
import base64
import datetime
import itertools
import json
import logging
import os
import signal
import smtplib
import time
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

log = logging.getLogger("smtp-relay")


def split_host_port(value):
    host, _, port = value.rpartition(":")
    return host, int(port)


def dovecot_user_name(login):
    """The user name Dovecot derives with auth_username_format = %Ln."""
    return login.split("@", 1)[0].lower()


def read_passwd_file(path):
    """Parse Dovecot passwd-file lines `user:{PLAIN}password::::::` into a dict."""
    users = {}
    with open(path, encoding="utf-8") as passwd:
        for line in passwd:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            name, _, rest = line.partition(":")
            password = rest.split(":", 1)[0]
            if password.startswith("{PLAIN}"):
                password = password[len("{PLAIN}"):]
            users[name] = password
    return users


class PasswdFileAuthenticator:
    """aiosmtpd authenticator that checks PLAIN and LOGIN against the passwd file."""

    def __init__(self, passwd_path):
        self.passwd_path = passwd_path

    def __call__(self, server, session, envelope, mechanism, auth_data):
        if mechanism not in ("PLAIN", "LOGIN") or not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        user = dovecot_user_name(login)
        expected = read_passwd_file(self.passwd_path).get(user)
        ok = expected is not None and expected == password
        log.info("AUTH %s as %r: %s", mechanism, login, "ok" if ok else "refused")
        # handled=False lets aiosmtpd answer 535 itself on failure; on success the
        # user name becomes session.auth_data, which the DATA handler records.
        return AuthResult(success=ok, handled=False, auth_data=user if ok else None)


class RelayHandler:
    def __init__(self, lmtp, sink, local_domain):
        self.lmtp_host, self.lmtp_port = lmtp
        self.sink = sink
        self.local_domain = local_domain.lower()
        self.seq = itertools.count(1)

    def is_local(self, address):
        return address.rpartition("@")[2].lower() == self.local_domain

    def deliver_by_lmtp(self, mail_from, recipients, data):
        """Deliver to each recipient in its own LMTP transaction.

        LMTP answers DATA once per recipient and smtplib reads only one answer, so one
        recipient per transaction keeps the dialogue in step.
        """
        delivered, refused = [], {}
        if not recipients:
            return delivered, refused
        with smtplib.LMTP(self.lmtp_host, self.lmtp_port, timeout=30) as lmtp:
            for rcpt in recipients:
                try:
                    lmtp.sendmail(mail_from, [rcpt], data)
                    delivered.append(rcpt)
                except smtplib.SMTPRecipientsRefused as error:
                    code, text = error.recipients[rcpt]
                    refused[rcpt] = [code, text.decode("utf-8", "replace")]
                except smtplib.SMTPDataError as error:
                    refused[rcpt] = [error.smtp_code, error.smtp_error.decode("utf-8", "replace")]
        return delivered, refused

    def write_sink_file(self, record):
        name = "{:020d}-{:06d}.json".format(time.time_ns(), record["seq"])
        tmp = os.path.join(self.sink, "." + name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as out:
            json.dump(record, out)
            out.flush()
        os.replace(tmp, os.path.join(self.sink, name))
        return name

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content or b""
        local = [rcpt for rcpt in envelope.rcpt_tos if self.is_local(rcpt)]
        loop = asyncio.get_running_loop()
        try:
            delivered, refused = await loop.run_in_executor(
                None, self.deliver_by_lmtp, envelope.mail_from, local, data
            )
        except (OSError, smtplib.SMTPException) as error:
            log.error("LMTP delivery failed: %s", error)
            return "451 4.3.0 Delivery into Dovecot failed: {}".format(error)
        record = {
            "seq": next(self.seq),
            "received_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "auth_user": session.auth_data if isinstance(session.auth_data, str) else None,
            "data_base64": base64.b64encode(data).decode("ascii"),
            "lmtp_delivered": delivered,
            "lmtp_refused": refused,
        }
        name = self.write_sink_file(record)
        log.info("accepted %s from %s for %s", name, envelope.mail_from, envelope.rcpt_tos)
        return "250 2.0.0 Message accepted"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, help="HOST:PORT to listen on")
    parser.add_argument("--lmtp", required=True, help="Dovecot LMTP HOST:PORT")
    parser.add_argument("--passwd", required=True, help="Dovecot passwd-file with {PLAIN} passwords")
    parser.add_argument("--sink", required=True, help="folder that receives one JSON file per message")
    parser.add_argument("--local-domain", default="example.org")
    args = parser.parse_args()

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # aiosmtpd warns on every connection that AUTH without TLS is insecure: expected here.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    os.makedirs(args.sink, exist_ok=True)

    handler = RelayHandler(split_host_port(args.lmtp), args.sink, args.local_domain)
    authenticator = PasswdFileAuthenticator(args.passwd)

    def factory():
        return SMTP(
            handler,
            hostname="smtp.example.org",
            enable_SMTPUTF8=True,
            decode_data=False,
            auth_required=True,
            auth_require_tls=False,
            authenticator=authenticator,
        )

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    host, port = split_host_port(args.listen)
    server = loop.run_until_complete(loop.create_server(factory, host=host, port=port))
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.add_signal_handler(signal.SIGINT, loop.stop)
    log.info("listening on %s, relaying to LMTP %s", args.listen, args.lmtp)
    try:
        loop.run_forever()
    finally:
        server.close()
        loop.close()


if __name__ == "__main__":
    main()
