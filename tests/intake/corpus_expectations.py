"""What each sample in ../shared/corpus/abuseio/ and ../shared/corpus/xarf-v4/ really says.

Written by reading every sample by hand (base64 parts, zipped CSVs and XARF evidence decoded with
Python to look), not by running the parsers. Keys are paths relative to the corpus folder.

Rules used throughout:
- IPs are written as the sample writes them; the test compares canonical forms (ipaddress).
- ``time``: the incident time of the earliest event, UTC. When a sample gives two defensible
  incident times (XARF v4 ``timestamp`` "when the abuse incident occurred" vs the type's
  ``first_seen`` "when first observed"), both are listed and either is accepted exactly.
  ``window`` replaces ``time`` where the sample only gives a day or a date range.
- ``category``: the categories an event of this sample may carry. Usually one; two where the
  sample's own wording sits between two words of our vocabulary (the comment says which).
  ``required`` lists categories that must appear (multi-category samples).
- ``error``: the sample names no IP address anywhere (domain/URL-only reports): the honest
  result is no events and an error saying why (the message stays "unparsed" for a person), or,
  where it names a URL whose host gives no address (no resolver answers in tests), events without
  an address that keep the URL and say why (they wait in the unassigned queue).
- ``port``: only where the sample names the port on the reported IP (the infringer's port in ACNS,
  the scanned service in Shadowserver, XARF v4 source_port); X-ARF 0.x "Port" fields that name the
  attacked server's service are not checked.
- ARF/FBL times come from the report part (Arrival-Date, or Received-Date for AOL, Yahoo and Zoho,
  which use that older field); all FBL samples here carry Source-IP.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

ARF = ("arf",)
XARF = ("xarf",)
XARF4 = ("xarf4",)
# X-ARF mails whose report names only a URL: the IP is in the prose, so free text may be the one to read it.
XARF_OR_TEXT = ("xarf", "freetext")
# ACNS XML copyright notices (no dedicated parser required): the XML or the "IP Address:" lines.
ACNS = ("acns", "xml", "keyvalue", "freetext")
CSV = ("csv", "shadowserver")
SHADOWSERVER = ("shadowserver", "csv")
FREETEXT = ("freetext",)
KEYVALUE = ("keyvalue", "xarf", "freetext")


@dataclasses.dataclass(frozen=True, slots=True)
class Expect:
    format: tuple[str, ...]  # accepted values of ParseResult.format (loose families)
    ips: frozenset[str] = frozenset()  # every one must be among the events' IPs
    optional_ips: frozenset[str] = frozenset()  # may appear, need not (malformed in the sample)
    time: tuple[str, ...] = ()  # accepted earliest-event times, UTC ISO
    window: tuple[str, str] | None = None  # [start, end] for samples that only give a day or range
    tolerance: int = 0  # seconds around each accepted time
    category: tuple[str, ...] = ()  # every event's category is one of these
    required: frozenset[str] = frozenset()  # categories that must appear among the events
    count: int | None = None  # exact number of events, where the sample fixes it (one per CSV row)
    port: int | None = None  # port every event must carry, where the sample names one for the reported IP
    error: bool = False  # no IP in the sample: expect no events and an error
    # One incident told once or twice (text + attachment): then every event, not only the earliest,
    # must carry an accepted time; a duplicate read in the wrong zone is still wrong.
    every_event: bool = False
    note: str = ""

    def times(self) -> list[datetime]:
        return [_dt(t) for t in self.time]


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def one(fmt: tuple[str, ...], ip: str, time: str | tuple[str, ...], category: str | tuple[str, ...], **kw) -> Expect:
    times = (time,) if isinstance(time, str) else time
    cats = (category,) if isinstance(category, str) else category
    return Expect(format=fmt, ips=frozenset({ip}), time=times, category=cats, every_event=True, **kw)


def many(fmt: tuple[str, ...], ips: list[str], time: str, category: str | tuple[str, ...], **kw) -> Expect:
    cats = (category,) if isinstance(category, str) else category
    return Expect(format=fmt, ips=frozenset(ips), time=(time,), category=cats, **kw)


def unparsable(fmt: tuple[str, ...], note: str) -> Expect:
    # fmt: what the dispatcher may still report as the detected format alongside the error. With no
    # events there is no event to carry the finer name, so the module's family name is accepted too.
    family = ("xarf",) if "xarf4" in fmt else ()
    return Expect(format=fmt + family + ("",), error=True, note=note)


def fbl(ip: str, time: str) -> Expect:
    # Feedback-loop complaint ("Feedback-Type: abuse") about one mail: spam from Source-IP.
    return one(ARF, ip, time, "spam")


EXPECTATIONS: dict[str, Expect] = {
    # ---------------------------------------------------------------- AbuseHub (AbuseHubCsv + Shadowserver CSV)
    # Both CSVs describe one ZeroAccess drone event: abusehub row 2015-03-02 01:45:59 (+01:00 per the text),
    # Shadowserver row "2015-03-02 00:45:59" (UTC) -> 00:45:59Z. Drone = infected host calling a C&C: botnet.
    "abuseio/abusehub/Abusehub_Example_1.eml": one(CSV, "172.16.10.13", "2015-03-02T00:45:59Z", "botnet"),
    "abuseio/abusehub/Abusehub_Example_2.eml": one(
        CSV, "fdf1:cb9d:f59e:19b0:0:45:0:22", "2015-03-02T00:45:59Z", "botnet"
    ),
    # ---------------------------------------------------------------- blocklist.de (X-ARF 0.2 report.txt)
    # Date: Fri, 31 Jan 2014 07:19:02 +0100; Report-Type regbot: a bot registering on a honeypot forum
    # with a spam signature ("Payday Loans"): forum spam; "other" accepted for the generic bot report.
    "abuseio/blocklistde/Blocklistde_Example_1.eml": one(XARF, "10.0.2.150", "2014-01-31T06:19:02Z", ("spam", "other")),
    "abuseio/blocklistde/Blocklistde_Example_2.eml": one(
        XARF, "fdf1:cb9d:f59e:19b0:0:0:33:4f", "2014-01-31T06:19:02Z", ("spam", "other")
    ),
    # ---------------------------------------------------------------- Clean-MX
    # 1/3: X-ARF report.txt, Date: Sun, 07 Jun 2015 21:09:11 +0200, Report-Type harvesting on postfix port 25
    # (an SMTP dictionary run: "554 User not known"): a spammer's harvest; "other" accepted.
    "abuseio/cleanmx/Cleanmx_Example_1.eml": one(XARF, "192.168.2.20", "2015-06-07T19:09:11Z", ("spam", "other")),
    "abuseio/cleanmx/Cleanmx_Example_3.eml": one(
        XARF, "fdf1:cb9d:f59e:19b0:45ff:0:0:1", "2015-06-07T19:09:11Z", ("spam", "other")
    ),
    # 2/4: text table "|2015-09-14 07:49:54 CEST |81328588 |JS/iFrame.cqq |ip |..." -> 05:49:54Z; a virus site.
    "abuseio/cleanmx/Cleanmx_Example_2.eml": one(
        ("freetext", "csv", "keyvalue"), "172.16.10.13", "2015-09-14T05:49:54Z", "malware"
    ),
    "abuseio/cleanmx/Cleanmx_Example_4.eml": one(
        ("freetext", "csv", "keyvalue"), "fdf1:cb9d:f59e:19b0:45ff:0:0:1", "2015-09-14T05:49:54Z", "malware"
    ),
    # ---------------------------------------------------------------- Copyright Compliance (Irdeto, ACNS XML)
    # <Source><TimeStamp>2015-09-04T13:19:53.000Z, BitTorrent, <Port>34890.
    "abuseio/copyrightcompliance/Copyrightcompliance_Example_1.eml": one(
        ACNS, "10.0.2.100", "2015-09-04T13:19:53Z", "copyright", port=34890
    ),
    "abuseio/copyrightcompliance/Copyrightcompliance_Example_2.eml": one(
        ACNS, "fdf1:cb9d:f59e:19b0:2:3:ff33:345", "2015-09-04T13:19:53Z", "copyright", port=34890
    ),
    # ---------------------------------------------------------------- Cyscon (YAML MALWARE-report.txt, no X-ARF header)
    # first_seen / last_seen / "Tested on": 2015-09-23 04:04:18 +0200 -> 02:04:18Z; malware URL hosted there.
    "abuseio/cyscon/Cyscon_Example_1.eml": one(KEYVALUE, "172.16.10.13", "2015-09-23T02:04:18Z", "malware"),
    "abuseio/cyscon/Cyscon_Example_2.eml": one(
        KEYVALUE, "fdf1:cb9d:f59e:19b0:ff3:567:0:33", "2015-09-23T02:04:18Z", "malware"
    ),
    # ---------------------------------------------------------------- feedback loops (ARF, all with Source-IP)
    # AOL: Received-Date: Tue, 19 Jan 2016 14:32:40 -0500 (EST)
    "abuseio/feedback-loop/AOL_example_1.eml": fbl("10.17.18.1", "2016-01-19T19:32:40Z"),
    # AOL: Received-Date: Tue, 19 Jan 2016 19:04:10 -0500 (EST)
    "abuseio/feedback-loop/AOL_example_2.eml": fbl("10.17.18.2", "2016-01-20T00:04:10Z"),
    # Arrival-Date: Sat, 16 Jan 2016 06:10:14 +0000
    "abuseio/feedback-loop/Bluetie_example_1.eml": fbl("10.17.18.3", "2016-01-16T06:10:14Z"),
    # Arrival-Date: Sun, 17 Jan 2016 19:50:35 +0000
    "abuseio/feedback-loop/Bluetie_example_2.eml": fbl("10.17.18.4", "2016-01-17T19:50:35Z"),
    # Arrival-Date: Tue, 19 Jan 2016 12:42:56 +0000
    "abuseio/feedback-loop/Comcast_example_1.eml": fbl("10.17.18.5", "2016-01-19T12:42:56Z"),
    # Arrival-Date: Tue, 19 Jan 2016 15:14:53 +0000
    "abuseio/feedback-loop/Comcast_example_2.eml": fbl("10.17.18.6", "2016-01-19T15:14:53Z"),
    # Arrival-Date: Mon, 21 Dec 2015 22:52:30 +0000
    "abuseio/feedback-loop/Cox_example_1.eml": fbl("10.17.18.7", "2015-12-21T22:52:30Z"),
    # Arrival-Date: Sun, 17 Jan 2016 20:53:33 +0000
    "abuseio/feedback-loop/Cox_example_2.eml": fbl("10.17.18.8", "2016-01-17T20:53:33Z"),
    # Arrival-Date: Sat, 16 Jan 2016 11:09:22 +0000
    "abuseio/feedback-loop/Fastmail_example_1.eml": fbl("10.17.18.9", "2016-01-16T11:09:22Z"),
    # Arrival-Date: Sat, 16 Jan 2016 11:52:00 +0000
    "abuseio/feedback-loop/Fastmail_example_2.eml": fbl("10.17.18.11", "2016-01-16T11:52:00Z"),
    # Arrival-Date: Sun, 17 Jan 2016 06:57:49 +0000
    "abuseio/feedback-loop/OpenSRS_example_1.eml": fbl("10.17.18.12", "2016-01-17T06:57:49Z"),
    # Arrival-Date: Tue, 12 Jan 2016 23:12:05 +0000
    "abuseio/feedback-loop/OpenSRS_example_2.eml": fbl("10.17.18.13", "2016-01-12T23:12:05Z"),
    # Arrival-Date: Tue, 29 Dec 2015 05:21:10 +0000
    "abuseio/feedback-loop/Rackspace_example_1.eml": fbl("10.17.18.14", "2015-12-29T05:21:10Z"),
    # Arrival-Date: Thu, 26 Nov 2015 02:10:09 +0000
    "abuseio/feedback-loop/Rackspace_example_2.eml": fbl("10.17.18.15", "2015-11-26T02:10:09Z"),
    # Arrival-Date: Wed, 13 Jan 2016 16:41:53 +0000 (a 419 scam mail; the complaint is about unsolicited mail)
    "abuseio/feedback-loop/RoadRunner_example_1.eml": fbl("10.17.18.16", "2016-01-13T16:41:53Z"),
    # Arrival-Date: Wed, 6 Jan 2016 10:22:48 +0000
    "abuseio/feedback-loop/RoadRunner_example_2.eml": fbl("10.17.18.20", "2016-01-06T10:22:48Z"),
    # Arrival-Date: Sun, 10 Jan 2016 21:56:23 +0000
    "abuseio/feedback-loop/Synacor_example_1.eml": fbl("10.17.18.21", "2016-01-10T21:56:23Z"),
    # Arrival-Date: Tue, 10 Feb 2015 01:36:04 +0000 (report mailed a year later, 2016-01-04)
    "abuseio/feedback-loop/Synacor_example_2.eml": fbl("10.18.19.20", "2015-02-10T01:36:04Z"),
    # Arrival-Date: Wed, 14 Oct 2015 06:59:38 +0000
    "abuseio/feedback-loop/USANet_example_1.eml": fbl("10.17.18.23", "2015-10-14T06:59:38Z"),
    # Arrival-Date: Wed, 27 May 2015 16:40:20 +0000
    "abuseio/feedback-loop/USANet_example_2.eml": fbl("10.17.18.24", "2015-05-27T16:40:20Z"),
    # Yahoo: Received-Date: Mon, 18 Jan 2016 23:57:24 UTC
    "abuseio/feedback-loop/Yahoo_example_1.eml": fbl("10.17.18.25", "2016-01-18T23:57:24Z"),
    # Yahoo: Received-Date: Tue, 19 Jan 2016 15:16:34 UTC
    "abuseio/feedback-loop/Yahoo_example_2.eml": fbl("10.17.18.26", "2016-01-19T15:16:34Z"),
    # Zoho: Received-Date: Mon, 7 Sep 2015 08:58:04 -0700 (PDT)
    "abuseio/feedback-loop/Zoho_example_1.eml": fbl("10.17.18.28", "2015-09-07T15:58:04Z"),
    # Zoho: Received-Date: Mon, 14 Sep 2015 10:24:01 -0700 (PDT)
    "abuseio/feedback-loop/Zoho_example_2.eml": fbl("10.17.18.29", "2015-09-14T17:24:01Z"),
    # ---------------------------------------------------------------- Google Safe Browsing (XML in text/plain)
    # <notification_message date="2015-01-01">: a day only, no time. list type 0 (compromised site serving
    # malware): url_info ip="..."; list type 1 (phishing): the IP is the URL's host, port 2222.
    "abuseio/google/Safe_Browsing_Report_1.eml": Expect(
        format=("freetext", "xml", "safebrowsing"),
        ips=frozenset({"10.0.2.23", "10.0.2.26"}),
        window=("2015-01-01T00:00:00Z", "2015-01-02T00:00:00Z"),
        category=("malware", "phishing"),
        required=frozenset({"malware", "phishing"}),
    ),
    # As 1, but the type-1 URLs write an IPv6 host unbracketed with ":2222" appended
    # ("http://fdf1:cb9d:f59e:19b0:f3:22:0:2:2222/..."), which is not a valid address as written:
    # a parser may read them (dropping the port) or leave them; only the type-0 IP is required.
    "abuseio/google/Safe_Browsing_Report_2.eml": Expect(
        format=("freetext", "xml", "safebrowsing"),
        ips=frozenset({"fdf1:cb9d:f59e:19b0:ff3:567:0:30"}),
        optional_ips=frozenset({"fdf1:cb9d:f59e:19b0:f3:22:0:2", "fdf1:cb9d:f59e:19b0:f3:22:0:23"}),
        window=("2015-01-01T00:00:00Z", "2015-01-02T00:00:00Z"),
        category=("malware", "phishing"),
        required=frozenset({"malware"}),
    ),
    # ---------------------------------------------------------------- IP-Echelon (ACNS XML, text + .xml attachment)
    # Time: <Source><TimeStamp> (= "Initial Infringement Timestamp" where the text has one); port: <Port>.
    "abuseio/ip-echelon/ip-echelon_sample1.eml": one(
        ACNS, "192.168.2.200", "2015-11-13T20:35:03Z", "copyright", port=35657
    ),
    "abuseio/ip-echelon/ip-echelon_sample2.eml": one(
        ACNS, "192.168.2.212", "2015-11-16T05:45:49Z", "copyright", port=58688
    ),
    "abuseio/ip-echelon/ip-echelon_sample3.eml": one(
        ACNS, "192.168.2.100", "2015-11-18T05:02:09Z", "copyright", port=3326
    ),
    "abuseio/ip-echelon/ip-echelon_sample4.eml": one(
        ACNS, "192.168.2.100", "2015-11-17T11:05:41Z", "copyright", port=18525
    ),
    "abuseio/ip-echelon/ip-echelon_sample5.eml": one(
        ACNS, "192.168.2.200", "2015-11-18T11:05:53Z", "copyright", port=1037
    ),
    "abuseio/ip-echelon/ip-echelon_sample6.eml": one(
        ACNS, "192.168.3.2", "2015-11-18T08:25:43Z", "copyright", port=51413
    ),
    "abuseio/ip-echelon/ip-echelon_sample7.eml": one(
        ACNS, "192.168.3.2", "2015-11-18T17:46:51Z", "copyright", port=51413
    ),
    # Warner-style text ("Since you own this IP address (192.168.3.2)"); time only in the XML.
    "abuseio/ip-echelon/ip-echelon_sample8.eml": one(
        ACNS, "192.168.3.2", "2015-11-27T11:58:43Z", "copyright", port=50321
    ),
    "abuseio/ip-echelon/ip-echelon_sample9.eml": one(
        ACNS, "192.168.3.2", "2015-11-13T03:39:39Z", "copyright", port=51413
    ),
    "abuseio/ip-echelon/ip-echelon_sample10.eml": one(
        ACNS, "192.168.3.3", "2015-11-12T23:12:02Z", "copyright", port=20849
    ),
    "abuseio/ip-echelon/ip-echelon_sample11.eml": one(
        ACNS, "192.168.3.3", "2015-11-01T23:04:46Z", "copyright", port=6112
    ),
    "abuseio/ip-echelon/ip-echelon_sample12.eml": one(
        ACNS, "192.168.3.3", "2015-11-09T14:11:51Z", "copyright", port=7396
    ),
    "abuseio/ip-echelon/ip-echelon_sample13.eml": one(
        ACNS, "192.168.3.3", "2015-11-10T01:04:55Z", "copyright", port=65267
    ),
    "abuseio/ip-echelon/ip-echelon_sample14.eml": one(
        ACNS, "192.168.3.6", "2015-11-11T12:00:50Z", "copyright", port=52988
    ),
    "abuseio/ip-echelon/ip-echelon_sample15.eml": one(
        ACNS, "192.168.3.6", "2015-11-13T03:39:39Z", "copyright", port=51413
    ),
    "abuseio/ip-echelon/ip-echelon_sample16.eml": one(
        ACNS, "192.168.3.3", "2015-11-12T23:12:02Z", "copyright", port=20849
    ),
    # ---------------------------------------------------------------- Netcraft (X-ARF: yes)
    # 1/2: Source-Type ipv4/ipv6, Report-Type malware-attack, Date: 2015-07-23T01:58:17+00:00.
    "abuseio/netcraft/Netcraft_Example_1.eml": one(XARF, "10.0.2.2", "2015-07-23T01:58:17Z", "malware"),
    "abuseio/netcraft/Netcraft_Example_2.eml": one(
        XARF, "fdf1:cb9d:f59e:19b0:0:0:0:1", "2015-07-23T01:58:17Z", "malware"
    ),
    # 3-9: Source-Type uri (phishing URL); the hosting IP is only in the prose: "http://... [10.0.2.11]".
    # Time from the X-ARF Date field.
    "abuseio/netcraft/Netcraft_Example_3.eml": one(XARF_OR_TEXT, "10.0.2.11", "2015-10-12T06:40:56Z", "phishing"),
    # "located at IP address 10.1.17.34"; the traceroute hops (81.91.253.130 ... 10.0.0.1) are not reported IPs.
    "abuseio/netcraft/Netcraft_Example_4.eml": one(XARF_OR_TEXT, "10.1.17.34", "2015-10-12T06:40:56Z", "phishing"),
    "abuseio/netcraft/Netcraft_Example_6.eml": one(XARF_OR_TEXT, "10.19.3.1", "2015-10-26T11:27:58Z", "phishing"),
    "abuseio/netcraft/Netcraft_Example_8.eml": one(XARF_OR_TEXT, "10.2.2.15", "2015-10-07T16:18:18Z", "phishing"),
    "abuseio/netcraft/Netcraft_Example_9.eml": one(XARF_OR_TEXT, "10.2.2.15", "2015-10-02T18:16:57Z", "phishing"),
    # ---------------------------------------------------------------- Project Honey Pot monitor reports (free text)
    # Free reports: IP lists with no per-IP time, only "Report Date Range: 09/02/2015 - 10/03/2015"
    # (US dates, the site's PDT): any time inside that range is right. Harvesting (1-3) and comment
    # spamming (4-5) are both spam work; "other" accepted for the harvesters.
    "abuseio/projecthoneypot/Projecthoneypot_Example_free_1.eml": Expect(
        format=FREETEXT,
        ips=frozenset({"10.0.2.1", "10.0.2.2", "10.0.2.3", "10.0.2.4", "10.0.2.5"}),
        window=("2015-09-02T07:00:00Z", "2015-10-04T07:00:00Z"),
        category=("spam", "other"),
        required=frozenset({"spam"}),
    ),
    "abuseio/projecthoneypot/Projecthoneypot_Example_free_2.eml": Expect(
        format=FREETEXT,
        ips=frozenset({f"fdaa:b1c7:75bc:bab0:0:0:0:{n}" for n in range(1, 6)}),
        window=("2015-09-02T07:00:00Z", "2015-10-04T07:00:00Z"),
        category=("spam", "other"),
        required=frozenset({"spam"}),
    ),
    # Paid reports: per-IP times in PDT. .19 harvesting 11:00AM, .21 spamming 10:00AM and 06:12AM,
    # .22 dictionary attack 11:00AM, .23 comment spam 10:00AM and "Other Potentially Suspicious" (R)
    # "Mon, 21 Sep 2015 12:00AM PDT" = 07:00Z, the earliest. The R listing is "other".
    "abuseio/projecthoneypot/Projecthoneypot_Example_paid_1.eml": Expect(
        format=FREETEXT,
        ips=frozenset({"192.168.1.19", "192.168.1.21", "192.168.1.22", "192.168.1.23"}),
        time=("2015-09-21T07:00:00Z",),
        category=("spam", "other"),
        required=frozenset({"spam"}),
    ),
    "abuseio/projecthoneypot/Projecthoneypot_Example_paid_2.eml": Expect(
        format=FREETEXT,
        ips=frozenset({"fd30::1:ff4e:3e:d:19", "fd30::1:ff4e:3e:d:21", "fd30::1:ff4e:3e:d:22", "fd30::1:ff4e:3e:d:23"}),
        time=("2015-09-21T07:00:00Z",),
        category=("spam", "other"),
        required=frozenset({"spam"}),
    ),
    # ---------------------------------------------------------------- Shadowserver (zipped CSV; "timestamp" is UTC)
    # One event per row; every row's IP listed. Scan reports: an exposed/amplifying service -> vulnerable_service.
    "abuseio/shadowserver/2015-01-01-dns_openresolver-sample-asn.csv.zip.eml": many(
        SHADOWSERVER,
        ["208.70.149.107", "204.245.210.223", "40.135.0.109", "76.74.186.178", "31.42.105.195"],
        "2013-10-10T00:05:10Z",
        "vulnerable_service",
        count=5,
    ),
    "abuseio/shadowserver/2015-01-01-scan_ipmi-sample-asn.csv.zip.eml": many(
        SHADOWSERVER,
        [
            "199.238.169.219",
            "193.124.60.29",
            "173.45.2.72",
            "188.116.19.4",
            "63.141.224.94",
            "112.73.8.4",
            "91.235.106.33",
            "62.117.115.163",
            "206.214.64.64",
        ],
        "2014-06-19T01:08:56Z",
        "vulnerable_service",
        count=9,
    ),  # fmt: skip
    "abuseio/shadowserver/2015-01-01-scan_memcached-sample-asn.csv.zip.eml": many(
        SHADOWSERVER,
        [
            "167.160.165.190",
            "42.96.169.80",
            "69.175.96.27",
            "74.82.14.241",
            "172.252.84.254",
            "98.126.206.158",
            "223.4.21.189",
            "121.41.60.46",
            "221.130.4.205",
        ],
        "2015-01-22T01:30:25Z",
        "vulnerable_service",
        count=9,
    ),  # fmt: skip
    # Timestamps 07:38:43 (first row) and 07:38:44 (the rest).
    "abuseio/shadowserver/2015-01-01-scan_mssql-sample-asn.csv.zip.eml": many(
        SHADOWSERVER,
        [
            "110.88.113.98",
            "112.20.234.33",
            "182.73.224.158",
            "82.119.155.254",
            "163.17.10.26",
            "182.18.189.236",
            "177.189.201.149",
            "178.32.46.20",
            "65.182.104.147",
            "187.45.202.36",
        ],
        "2015-02-04T07:38:43Z",
        "vulnerable_service",
        count=10,
    ),  # fmt: skip
    "abuseio/shadowserver/2015-01-01-scan_nat_pmp-sample-asn.csv.zip.eml": many(
        SHADOWSERVER,
        [
            "177.9.199.160",
            "94.254.3.170",
            "186.134.58.172",
            "117.68.107.157",
            "189.50.111.239",
            "186.106.128.38",
            "113.116.218.16",
        ],
        "2014-12-19T07:08:59Z",
        "vulnerable_service",
        count=7,
    ),  # fmt: skip
    "abuseio/shadowserver/2015-01-01-scan_netbios-sample-asn.csv.zip.eml": many(
        SHADOWSERVER,
        [
            "118.232.245.224",
            "131.193.206.74",
            "188.108.94.175",
            "150.7.205.59",
            "199.83.89.41",
            "203.94.3.164",
            "190.14.237.98",
            "190.177.250.57",
        ],
        "2014-03-16T00:13:19Z",
        "vulnerable_service",
        count=8,
    ),  # fmt: skip
    "abuseio/shadowserver/2015-01-01-scan_ntp-sample-asn.csv.zip.eml": many(
        SHADOWSERVER,
        [
            "76.22.142.205",
            "123.23.130.233",
            "193.158.193.1",
            "221.112.23.116",
            "62.212.206.130",
            "115.91.152.25",
            "106.243.160.182",
            "118.186.156.166",
            "91.191.233.205",
        ],
        "2014-03-21T02:13:17Z",
        "vulnerable_service",
        count=9,
    ),  # fmt: skip
    "abuseio/shadowserver/2015-01-01-scan_ntpmonitor-sample-asn.csv.zip.eml": many(
        SHADOWSERVER,
        [
            "218.161.57.7",
            "190.116.130.70",
            "108.212.208.147",
            "81.245.134.4",
            "114.35.11.110",
            "180.241.34.240",
            "109.173.161.127",
            "216.234.67.45",
            "107.130.96.108",
            "77.241.38.7",
            "80.84.176.200",
        ],
        "2014-04-12T08:43:11Z",
        "vulnerable_service",
        count=11,
    ),  # fmt: skip
    "abuseio/shadowserver/2015-01-01-scan_redis-sample-asn.csv.zip.eml": many(
        SHADOWSERVER,
        [
            "98.126.92.5",
            "153.120.101.170",
            "23.251.154.32",
            "104.203.27.243",
            "50.188.150.22",
            "54.167.182.69",
            "46.4.13.206",
            "58.178.184.235",
            "173.208.211.213",
            "23.239.11.248",
            "54.174.181.36",
            "211.103.198.123",
            "192.241.235.129",
        ],
        "2015-01-19T12:10:01Z",
        "vulnerable_service",
        count=13,
    ),  # fmt: skip
    "abuseio/shadowserver/2015-01-01-scan_snmp-sample-asn.csv.zip.eml": many(
        SHADOWSERVER,
        [
            "129.113.21.93",
            "79.2.242.16",
            "95.109.21.127",
            "201.8.4.57",
            "76.186.106.223",
            "182.68.111.119",
            "125.214.158.32",
            "74.138.148.8",
            "222.233.225.196",
            "84.3.91.88",
        ],
        "2014-03-16T03:45:50Z",
        "vulnerable_service",
        count=10,
    ),  # fmt: skip
    "abuseio/shadowserver/2015-01-01-scan_ssdp-sample-asn.csv.zip.eml": many(
        SHADOWSERVER,
        [
            "67.193.128.173",
            "24.35.243.77",
            "65.25.192.8",
            "209.197.143.187",
            "76.11.218.168",
            "74.210.207.51",
            "76.166.127.141",
            "1.62.9.118",
            "183.104.67.106",
        ],
        "2014-03-16T08:14:59Z",
        "vulnerable_service",
        count=9,
    ),  # fmt: skip
    # Sinkholed HTTP drones (type downadup / sality): infected hosts calling a C&C -> botnet.
    "abuseio/shadowserver/2015-01-01-sinkhole_http_drone-sample-asn.csv.zip.eml": many(
        SHADOWSERVER,
        [
            "202.86.21.11",
            "82.115.28.93",
            "180.94.94.3",
            "82.115.10.63",
            "82.115.10.39",
            "82.115.25.117",
            "82.115.23.237",
            "82.115.23.172",
        ],
        "2010-08-31T00:09:04Z",
        "botnet",
        count=8,
    ),  # fmt: skip
    # The sample uses loopback addresses (127.0.6.59, 127.0.6.57): that is what it holds.
    "abuseio/shadowserver/2019-01-06-scan_afp-sample-ip.csv.zip.eml": many(
        SHADOWSERVER, ["127.0.6.59", "127.0.6.57"], "2019-01-16T03:42:34Z", "vulnerable_service", count=2, port=548
    ),
    "abuseio/shadowserver/2019-10-15-scan_dns-sample-asn.csv.zip.eml": many(
        SHADOWSERVER, ["31.42.105.195"], "2019-10-15T01:09:24Z", "vulnerable_service", count=1, port=53
    ),
    "abuseio/shadowserver/2019-10-15-scan_ftp-sample-asn.csv.zip.eml": many(
        SHADOWSERVER, ["31.42.105.195"], "2019-10-15T00:05:18Z", "vulnerable_service", count=1, port=21
    ),
    "abuseio/shadowserver/2019-10-15-scan_http-sample-asn.csv.zip.eml": many(
        SHADOWSERVER, ["31.42.105.195"], "2019-10-15T00:02:15Z", "vulnerable_service", count=1, port=8080
    ),
    "abuseio/shadowserver/2019-10-15-scan_ldap_tcp-sample-asn.csv.zip.eml": many(
        SHADOWSERVER, ["31.42.105.195"], "2019-10-15T06:21:11Z", "vulnerable_service", count=1, port=389
    ),
    "abuseio/shadowserver/2019-10-15-scan_rsync-sample-asn.csv.zip.eml": many(
        SHADOWSERVER, ["31.42.105.195"], "2019-10-15T04:47:54Z", "vulnerable_service", count=1, port=873
    ),
    # ---------------------------------------------------------------- SpamExperts (ARF, RFC 5965)
    # Source-IP and Arrival-Date (the report part); outgoing spam from an authenticated user (GTUBE test mail).
    "abuseio/spamexperts/1.eml": fbl("172.16.10.13", "2015-08-04T08:51:18Z"),
    "abuseio/spamexperts/2.eml": fbl("192.168.1.12", "2015-08-04T08:51:17Z"),
    "abuseio/spamexperts/3.eml": fbl("10.0.2.35", "2015-08-04T11:01:11Z"),
    "abuseio/spamexperts/4.eml": fbl("10.0.2.35", "2015-08-04T11:01:14Z"),
    "abuseio/spamexperts/5.eml": fbl("10.0.2.35", "2015-08-04T11:01:10Z"),
    "abuseio/spamexperts/6.eml": fbl("10.0.2.35", "2015-08-04T11:01:12Z"),
    "abuseio/spamexperts/7.eml": fbl("10.0.2.35", "2015-08-04T11:01:13Z"),
    "abuseio/spamexperts/8.eml": fbl("10.0.2.35", "2015-08-04T11:01:15Z"),
    "abuseio/spamexperts/9.eml": fbl("10.0.2.35", "2015-08-04T11:01:14Z"),
    "abuseio/spamexperts/10.eml": fbl("10.0.2.35", "2015-08-04T11:01:12Z"),
    "abuseio/spamexperts/11.eml": fbl("fdf1:cb9d:f59e:19b0:0:0:0:122", "2015-08-04T11:01:12Z"),
    # ---------------------------------------------------------------- Webiron
    # 1: two YAML arf_report*.txt attachments (no X-ARF header), both Source 172.16.31.20, Port '80',
    # Date '2015-05-15 17:03:11-07:00'; "Client software detected as known botware ... (IE: botnets)"
    # fetching robots.txt and / : a bot; "scanning" accepted for the crawl-like requests.
    "abuseio/webiron/Webiron_Example_1.eml": one(
        KEYVALUE, "172.16.31.20", "2015-05-16T00:03:11Z", ("botnet", "scanning")
    ),
    # 2/3: text only. "Time: 2015-09-25 22:14:33-07:00", Port 80, POSTs to wp-login.php with
    # pwd/log arguments: a WordPress login attack (by botware, so "botnet" accepted).
    "abuseio/webiron/Webiron_Example_2.eml": one(
        ("freetext", "keyvalue"), "172.16.10.13", "2015-09-26T05:14:33Z", ("login_attack", "botnet")
    ),
    "abuseio/webiron/Webiron_Example_3.eml": one(
        ("freetext", "keyvalue"),
        "fdf1:cb9d:f59e:19b0:0:3:4:2",
        "2015-09-26T05:14:33Z",
        ("login_attack", "botnet"),
    ),
    # ---------------------------------------------------------------- XARF v4 JSON (bare JSON files)
    # time: "timestamp" (core: when the incident occurred); first_seen also accepted where present.
    # port: source_port where given.
    "xarf-v4/connection-ddos.json": one(
        XARF4, "192.0.2.155", ("2025-01-11T09:21:23Z", "2025-01-11T08:45:00Z"), "ddos", port=1
    ),
    # Zeus bot talking to its C2 (bot_id, c2_server): botnet; "malware" accepted (infected host).
    "xarf-v4/connection-infected-host.json": one(
        XARF4, "203.0.113.85", ("2025-01-11T13:42:15Z", "2025-01-10T08:00:00Z"), ("botnet", "malware"), port=443
    ),
    "xarf-v4/connection-login-attack.json": one(
        XARF4, "198.51.100.77", ("2025-01-11T12:17:20Z", "2025-01-11T06:17:20Z"), "login_attack", port=45621
    ),
    "xarf-v4/connection-port-scan.json": one(
        XARF4, "198.51.100.150", ("2025-01-11T11:26:59Z", "2025-01-11T11:20:00Z"), "scanning", port=54321
    ),
    # Probing for /.env, /.git/config ...: reconnaissance scanning.
    "xarf-v4/connection-reconnaissance.json": one(
        XARF4, "192.0.2.99", ("2025-01-20T16:45:00Z", "2025-01-20T16:30:00Z"), "scanning"
    ),
    # Content scraping: none of our words fits but "other".
    "xarf-v4/connection-scraping.json": one(
        XARF4, "192.0.2.150", ("2025-01-20T14:00:00Z", "2025-01-20T10:00:00Z"), "other"
    ),
    # SQL injection against a web application: an attack with no word of its own -> "other".
    "xarf-v4/connection-sql-injection.json": one(
        XARF4, "192.0.2.45", ("2025-01-20T12:00:00Z", "2025-01-20T11:45:00Z"), "other"
    ),
    "xarf-v4/connection-vulnerability-scan.json": one(
        XARF4, "203.0.113.77", ("2025-01-20T09:30:00Z", "2025-01-20T09:15:00Z"), "scanning"
    ),
    "xarf-v4/content-brand-infringement.json": unparsable(
        XARF4, "source_identifier is the domain fake-apple-store.example.com; no IP anywhere in the report"
    ),
    # Illegal content hosted at the IP: no word of its own -> "other".
    "xarf-v4/content-csam.json": one(XARF4, "198.51.100.42", "2025-01-20T10:30:00Z", "other"),
    "xarf-v4/content-csem.json": one(XARF4, "198.51.100.42", "2025-01-20T10:30:00Z", "other"),
    # A misconfigured server exposing a database dump: vulnerable_service; "other" accepted.
    "xarf-v4/content-exposed-data.json": one(
        XARF4, "198.51.100.99", "2025-01-20T09:20:00Z", ("vulnerable_service", "other")
    ),
    "xarf-v4/content-fraud.json": unparsable(
        XARF4, "source_identifier is the domain crypto-scam-invest.example.com; no IP anywhere in the report"
    ),
    "xarf-v4/content-malware.json": one(XARF4, "192.0.2.75", "2025-01-11T09:07:21Z", "malware"),
    "xarf-v4/content-phishing.json": one(XARF4, "203.0.113.45", "2025-01-11T15:15:24Z", "phishing"),
    "xarf-v4/content-remote-compromise.json": unparsable(
        XARF4, "source_identifier is the domain compromised-blog.example.com; no IP anywhere in the report"
    ),
    "xarf-v4/content-suspicious-registration.json": unparsable(
        XARF4, "source_identifier is the domain g00gle-verify.example.com; no IP anywhere in the report"
    ),
    "xarf-v4/copyright-copyright.json": one(XARF4, "198.51.100.75", "2025-01-11T11:52:34Z", "copyright"),
    "xarf-v4/copyright-cyberlocker.json": unparsable(
        XARF4, "source_identifier is the domain file-sharing.example.com; no IP anywhere in the report"
    ),
    "xarf-v4/copyright-link-site.json": unparsable(
        XARF4, "source_identifier is the domain links-aggregator.example.net; no IP anywhere in the report"
    ),
    "xarf-v4/copyright-p2p.json": one(XARF4, "192.0.2.100", "2025-01-11T13:44:41Z", "copyright"),
    "xarf-v4/copyright-ugc-platform.json": unparsable(
        XARF4, "source_identifier is the domain video-platform.example.com; no IP anywhere in the report"
    ),
    "xarf-v4/copyright-usenet.json": unparsable(
        XARF4, "source_identifier is news.usenet-provider.example.com; the evidence is Usenet headers without an IP"
    ),
    # Conficker bot, C2 channel; first_seen a year earlier (2024-01-14T18:45:00Z).
    "xarf-v4/infrastructure-botnet.json": one(
        XARF4, "198.51.100.25", ("2025-01-11T15:00:52Z", "2024-01-14T18:45:00Z"), "botnet"
    ),
    # Webshell and backdoor on a web server with C2 traffic: malware; "other" accepted.
    "xarf-v4/infrastructure-compromised-server.json": one(
        XARF4, "203.0.113.150", ("2025-01-11T15:57:57Z", "2024-01-14T20:15:30Z"), ("malware", "other"), port=80
    ),
    "xarf-v4/messaging-bulk-messaging.json": unparsable(
        XARF4, "source_identifier is the host name mail.bulk-sender.example; no IP anywhere in the report"
    ),
    # Evidence (message/rfc822, base64) says "Received: from example.com (example.com [192.168.1.100])": same IP.
    "xarf-v4/messaging-spam.json": one(XARF4, "192.168.1.100", "2025-01-11T10:59:45Z", "spam", port=25),
    # Listed as a command-and-control server: botnet; "other" accepted for a bare blocklist entry.
    # first_reported (2024-01-10T14:20:00Z) is when the list first had it; also accepted.
    "xarf-v4/reputation-blocklist.json": one(
        XARF4, "203.0.113.200", ("2025-01-11T10:51:30Z", "2024-01-10T14:20:00Z"), ("botnet", "other")
    ),
    "xarf-v4/reputation-threat-intelligence.json": one(
        XARF4, "192.0.2.50", ("2025-01-11T10:38:41Z", "2024-01-10T08:00:00Z"), ("botnet", "other")
    ),
    "xarf-v4/vulnerability-cve.json": one(
        XARF4, "172.16.1.200", "2025-01-11T12:49:43Z", "vulnerable_service", port=8080
    ),
    # The sample's first_seen (13:05:30) is after its timestamp (11:39:44); both accepted as written.
    "xarf-v4/vulnerability-misconfiguration.json": one(
        XARF4, "192.0.2.75", ("2025-01-11T11:39:44Z", "2025-01-11T13:05:30Z"), "vulnerable_service"
    ),
    "xarf-v4/vulnerability-open-service.json": one(
        XARF4, "192.0.2.50", "2025-01-11T15:35:37Z", "vulnerable_service", port=3389
    ),
}
