#!/usr/bin/env python3
"""Writes the sample logs under events/logs/ (deterministic: same bytes every run).

- a gzip Bedrock invocation log: normal traffic and a burst of denials by one principal;
- a gzip CloudTrail file with IAM denials of Bedrock InvokeModel by another principal;
- a plain JSON-lines Bedrock log whose denials complete a burst across objects;
- a gzip CloudTrail file of a stolen key being checked in another account: models
  listed Region by Region, the logging configuration read, one denied InvokeModel
  per model from rotated role sessions, and one session's validation-error probes.
"""
import gzip
import io
import json
import os
import random

ACCOUNT = "111122223333"
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "events", "logs")
rng = random.Random(20260314)

PRINCIPALS = [
    f"arn:aws:sts::{ACCOUNT}:assumed-role/DataScience/alice@example.com",
    f"arn:aws:sts::{ACCOUNT}:assumed-role/SupportBot/support-bot-7f3c",
    f"arn:aws:iam::{ACCOUNT}:user/ci-pipeline",
]
MALLORY = f"arn:aws:sts::{ACCOUNT}:assumed-role/ContractorAccess/mallory"
BOB = f"arn:aws:iam::{ACCOUNT}:user/bob.smith"
TRENT = f"arn:aws:sts::{ACCOUNT}:assumed-role/LegacyApp/i-0a1b2c3d4e5f67890"
ALLOWED = ["anthropic.claude-3-haiku-20240307-v1:0", "amazon.titan-text-express-v1"]
DENIED = "anthropic.claude-3-opus-20240229-v1:0"
WORDS = ("summarize the quarterly report draft and list open risks for the platform team "
         "translate this paragraph into plain language explain the error budget policy "
         "write a short status update about the migration of the billing service").split()


def text(n):
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def ts(h, m, s):
    return f"2026-03-14T{h:02d}:{m:02d}:{s:02d}Z"


def req():
    return "%08x-%04x-%04x-%04x-%012x" % (rng.getrandbits(32), rng.getrandbits(16),
                                          rng.getrandbits(16), rng.getrandbits(16), rng.getrandbits(48))


def invocation(t, who, model, error=None, prompt=None):
    rec = {
        "schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": t,
        "accountId": ACCOUNT, "identity": {"arn": who}, "region": "us-east-1",
        "requestId": req(), "operation": "Converse", "modelId": model,
        "input": {"inputContentType": "application/json",
                  "inputBodyJson": {"messages": [{"role": "user", "content": [{"text": prompt or text(60)}]}],
                                    "inferenceConfig": {"maxTokens": 512}},
                  "inputTokenCount": rng.randint(40, 900)},
    }
    if error:
        rec["errorCode"] = error
    else:
        rec["output"] = {"outputContentType": "application/json",
                         "outputBodyJson": {"output": {"message": {"role": "assistant",
                                            "content": [{"text": text(120)}]}},
                                            "stopReason": "end_turn"},
                         "outputTokenCount": rng.randint(50, 600)}
    return rec


def write(path, data, compress):
    full = os.path.join(ROOT, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    if compress:
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
            gz.write(data)
        data = buf.getvalue()
    with open(full, "wb") as f:
        f.write(data)


def lines(records):
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()


# 09:00-09:10: normal traffic, mallory tries the denied model 5 times, bob twice.
recs = []
for i in range(240):
    recs.append(invocation(ts(9, i // 24, (i * 7) % 60), rng.choice(PRINCIPALS), rng.choice(ALLOWED)))
for m, s in [(1, 12), (2, 40), (4, 3), (6, 55), (8, 30)]:
    recs.append(invocation(ts(9, m, s), MALLORY, DENIED, "AccessDeniedException"))
for m, s in [(2, 5), (7, 44)]:
    recs.append(invocation(ts(9, m, s), BOB, DENIED, "AccessDeniedException"))
recs.append(invocation(ts(9, 3, 0), PRINCIPALS[0], ALLOWED[0], "ValidationException"))
recs.append(invocation(ts(9, 5, 0), PRINCIPALS[1], ALLOWED[1], "ThrottlingException"))
recs.append(invocation(ts(9, 6, 0), PRINCIPALS[0], ALLOWED[0],
                       prompt='Why does my app log "errorCode": "AccessDeniedException" for Claude?'))
recs.sort(key=lambda r: r["timestamp"])
write(f"AWSLogs/{ACCOUNT}/BedrockModelInvocationLogs/us-east-1/2026/03/14/09/"
      "20260314T091000Z_5d3c1a9e7b2f4e68.json.gz", lines(recs), True)

# CloudTrail: an old workload hammers InvokeModel on a model its role is denied.
def ct(t, who, source, name, error=None, model=DENIED):
    rec = {
        "eventVersion": "1.09",
        "userIdentity": {"type": "AssumedRole", "principalId": "AROAEXAMPLE:i-0a1b2c3d4e5f67890",
                         "arn": who, "accountId": ACCOUNT,
                         "sessionContext": {"attributes": {"mfaAuthenticated": "false",
                                                           "creationDate": "2026-03-14T08:00:00Z"}}},
        "eventTime": t, "eventSource": source, "eventName": name, "awsRegion": "us-east-1",
        "sourceIPAddress": "10.0.12.7", "userAgent": "Boto3/1.34.0 md/Botocore#1.34.0",
        "requestParameters": {"modelId": model} if source == "bedrock.amazonaws.com" else {"bucketName": "x"},
        "responseElements": None, "requestID": req(), "eventID": req(), "readOnly": True,
        "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
    }
    if error:
        rec["errorCode"] = error
        rec["errorMessage"] = (f"User: {who} is not authorized to perform: bedrock:{name} on resource: "
                               f"arn:aws:bedrock:us-east-1::foundation-model/{model}")
    return rec


trail = [ct(ts(9, 11, 2), TRENT, "bedrock.amazonaws.com", "ListFoundationModels")]
for m, s in [(12, 1), (13, 30), (15, 8), (16, 45), (18, 20)]:
    trail.append(ct(ts(9, m, s), TRENT, "bedrock.amazonaws.com", "InvokeModel", "AccessDenied"))
trail.append(ct(ts(9, 14, 0), TRENT, "s3.amazonaws.com", "GetObject", "AccessDenied"))
trail.append(ct(ts(9, 17, 0), PRINCIPALS[2], "bedrock.amazonaws.com", "InvokeModel", model=ALLOWED[1]))
trail.sort(key=lambda r: r["eventTime"])
write(f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/03/14/"
      f"{ACCOUNT}_CloudTrail_us-east-1_20260314T0920Z_Hx2kP0qRz8TtV1aB.json.gz",
      json.dumps({"Records": trail}, separators=(",", ":")).encode(), True)

# 09:30-09:45 plain JSON lines: bob's two more denials complete a burst across
# objects (4 within an hour); mallory's three more fall in her suppression period.
recs = [invocation(ts(9, 30 + i // 6, (i * 11) % 60), rng.choice(PRINCIPALS), rng.choice(ALLOWED))
        for i in range(60)]
recs += [invocation(ts(9, 41, 10), BOB, DENIED, "AccessDeniedException"),
         invocation(ts(9, 44, 59), BOB, DENIED, "AccessDeniedException")]
recs += [invocation(ts(9, 33, s), MALLORY, DENIED, "AccessDeniedException") for s in (1, 2, 3)]
recs.sort(key=lambda r: r["timestamp"])
write("plain/bedrock-invocations-20260314T0945Z.json", lines(recs), False)

# Another account: a stolen key being checked, as public LLMjacking research shows
# it. The checker lists models Region by Region, reads the invocation-logging
# configuration, then calls InvokeModel once per model (spelled as model ids, ARNs and
# inference profiles), rotating its role session; ValidationException means the key
# may use the model. No session is denied more than once per model.
VICTIM = "444455556666"
krng = random.Random(20260315)


def kreq():
    return "%08x-%04x-%04x-%04x-%012x" % (krng.getrandbits(32), krng.getrandbits(16),
                                          krng.getrandbits(16), krng.getrandbits(16), krng.getrandbits(48))


def checker(t, session, name, region, model=None, error=None):
    who = f"arn:aws:sts::{VICTIM}:assumed-role/bedrock-app-role/{session}"
    rec = {
        "eventVersion": "1.09",
        "userIdentity": {"type": "AssumedRole", "principalId": f"AROAVICTIMEXAMPLE:{session}",
                         "arn": who, "accountId": VICTIM, "accessKeyId": "ASIAVICTIMEXAMPLE",
                         "sessionContext": {"sessionIssuer": {
                             "type": "Role", "arn": f"arn:aws:iam::{VICTIM}:role/bedrock-app-role",
                             "accountId": VICTIM, "userName": "bedrock-app-role"},
                             "attributes": {"mfaAuthenticated": "false",
                                            "creationDate": t}}},
        "eventTime": t, "eventSource": "bedrock.amazonaws.com", "eventName": name,
        "awsRegion": region, "sourceIPAddress": "198.51.100.23",
        "userAgent": "python-requests/2.31.0",
        "requestParameters": {"modelId": model} if model else None,
        "responseElements": None, "requestID": kreq(), "eventID": kreq(),
        "readOnly": name != "InvokeModel", "eventType": "AwsApiCall",
        "managementEvent": name != "InvokeModel", "recipientAccountId": VICTIM,
        "eventCategory": "Management" if name != "InvokeModel" else "Data",
    }
    if error:
        rec["errorCode"] = error
        rec["errorMessage"] = (
            f"User: {who} is not authorized to perform: bedrock:{name} on resource: {model} "
            "because no identity-based policy allows the bedrock:InvokeModel action"
            if error == "AccessDenied" else "Malformed input request, please reformat your input and try again.")
    return rec


SONNET = "anthropic.claude-3-5-sonnet-20240620-v1:0"
sessions = [f"botocore-session-{1773482400 + 97 * i}" for i in range(4)]
keycheck = []
for i, region in enumerate(["us-east-1", "us-west-2", "eu-central-1", "ap-northeast-1"]):
    keycheck.append(checker(ts(10, 0, 5 + 3 * i), sessions[0], "ListFoundationModels", region))
keycheck.append(checker(ts(10, 0, 20), sessions[0], "GetModelInvocationLoggingConfiguration", "us-east-1"))
denied = [
    (sessions[0], "us-east-1", SONNET),
    (sessions[0], "us-east-1", "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-opus-20240229-v1:0"),
    (sessions[0], "us-west-2", "us.anthropic.claude-3-haiku-20240307-v1:0"),
    (sessions[1], "us-west-2", f"arn:aws:bedrock:us-west-2:{VICTIM}:inference-profile/us.{SONNET}"),
    (sessions[1], "eu-central-1", "mistral.mistral-large-2402-v1:0"),
    (sessions[2], "us-east-1", f"arn:aws:bedrock:us-east-1::foundation-model/{SONNET}"),
    (sessions[2], "us-east-1", "meta.llama3-1-70b-instruct-v1:0"),
    (sessions[3], "ap-northeast-1", f"apac.{SONNET}"),
]
for i, (session, region, model) in enumerate(denied):
    keycheck.append(checker(ts(10, 1 + i, 10), session, "InvokeModel", region, model, "AccessDenied"))
# The models the key may use answer ValidationException to the checker's invalid
# request: one session probes four of them within a minute.
usable = ["amazon.titan-text-express-v1", "cohere.command-r-v1:0", "amazon.nova-lite-v1:0",
          "ai21.jamba-1-5-mini-v1:0"]
for i, model in enumerate(usable):
    keycheck.append(checker(ts(10, 5, 40 + 4 * i), sessions[1], "InvokeModel", "us-east-1", model,
                            "ValidationException"))
keycheck.sort(key=lambda r: r["eventTime"])
write(f"AWSLogs/{VICTIM}/CloudTrail/us-east-1/2026/03/14/"
      f"{VICTIM}_CloudTrail_us-east-1_20260314T1010Z_St0lenK3yCheck01.json.gz",
      json.dumps({"Records": keycheck}, separators=(",", ":")).encode(), True)
