"""KMS as the local backend serves it: moto's KMS with real key state, key spec, cross-account use,
a key-policy decision on every call, and a CloudTrail record for every call.

User calls arrive over the wire (``handle``); the emulated EMR Serverless calls in-process as the
service principal (``use_key_for_disks``) or on behalf of its caller (``check_caller_key_access``).
Both go through the same checks and the same recording.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from moto.kms.models import Key, KmsBackend, kms_backends
from moto.kms.responses import KmsResponse
from moto.kms.utils import _deserialize_ciphertext_blob

from emr_cmk_notebook.local.cloudtrail import CloudTrail
from emr_cmk_notebook.local.errors import AwsError
from emr_cmk_notebook.local.identity import EMR_SERVERLESS_PRINCIPAL, Identity
from emr_cmk_notebook.local.policy_seam import KeyAccessRequest, KeyPolicySeam
from emr_cmk_notebook.local.wire import (
    JSON11_CONTENT_TYPE,
    ApiRequest,
    ApiResponse,
    checked_json_input,
    json11_error,
)

PARTITION = "aws"

# Operations that need a symmetric encryption key (KeySpec SYMMETRIC_DEFAULT).
SYMMETRIC_OPS = frozenset(
    {
        "Encrypt",
        "Decrypt",
        "ReEncrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
    }
)
# Operations a principal may call on a key in another account (by key ARN or alias ARN).
CROSS_ACCOUNT_OPS = SYMMETRIC_OPS | {
    "DescribeKey",
    "CreateGrant",
    "ListGrants",
    "RetireGrant",
    "RevokeGrant",
    "GetPublicKey",
    "Sign",
    "Verify",
    "GenerateMac",
    "VerifyMac",
    "GetKeyRotationStatus",
}
# Request members CloudTrail never records (blobs and key material).
UNLOGGED_MEMBERS = frozenset({"Plaintext", "CiphertextBlob", "Message", "Signature", "Mac"})
# Calls whose CloudTrail records name the key material used (``additionalEventData``), as AWS's
# published sample records of these operations show.
KEY_MATERIAL_LOGGED = frozenset({"Encrypt", "Decrypt", "GenerateDataKey"})

Forward = Callable[[ApiRequest, str], ApiResponse]


def _disable_moto_policy_check() -> None:
    # moto denies any call a Deny statement mentions, whatever its principal or conditions;
    # the key-policy decision is made once, in KeyPolicySeam, before moto sees the request.
    KmsResponse._validate_key_policy = lambda self, key_id, action: None  # type: ignore[method-assign]


_disable_moto_policy_check()


def _accept_key_arns() -> None:
    # KMS takes a key ARN wherever it takes a key id; these moto models look up the id only
    # (a key ARN there was a KeyError and a 500).
    for name in ("enable_key", "disable_key", "schedule_key_deletion", "cancel_key_deletion"):
        by_id = getattr(KmsBackend, name)

        def by_any_id(self: KmsBackend, key_id: str, *args: Any, _by_id: Any = by_id) -> Any:
            return _by_id(self, self.any_id_to_key_id(key_id), *args)

        setattr(KmsBackend, name, by_any_id)


_accept_key_arns()


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def request_parameters(body: Mapping[str, Any]) -> dict[str, Any]:
    """The ``requestParameters`` CloudTrail writes for a KMS request body."""
    return {_camel(k): v for k, v in body.items() if k not in UNLOGGED_MEMBERS}


def key_material_id(key: Key) -> str:
    """The 64-hex-digit id of a key's current key material (a new one after each rotation)."""
    return hashlib.sha256(f"{key.arn}#{len(key.rotations)}".encode()).hexdigest()


def _event_data(operation: str, key: Key | None, failed: bool) -> dict[str, Any] | None:
    if failed or key is None or operation not in KEY_MATERIAL_LOGGED:
        return None
    return {"keyMaterialId": key_material_id(key)}


def _in_kms_shape(response: ApiResponse) -> ApiResponse:
    """moto's answer with the content type KMS answers with."""
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-type"}
    return ApiResponse(
        response.status, response.body, {**headers, "Content-Type": JSON11_CONTENT_TYPE}
    )


def policy_context(
    identity: Identity, key: Key, encryption_context: Mapping[str, str] | None, extra: Mapping
) -> dict[str, Any]:
    """The condition keys a key policy can test for one call."""
    context: dict[str, Any] = {"kms:CallerAccount": identity.account_id}
    if identity.type != "AWSService":
        context["aws:PrincipalAccount"] = identity.account_id
        context["aws:PrincipalArn"] = identity.role_arn or identity.arn
    if encryption_context is not None:
        for name, value in encryption_context.items():
            context[f"kms:EncryptionContext:{name}"] = value
        context["kms:EncryptionContextKeys"] = list(encryption_context)
    context.update(extra)
    return context


class LocalKms:
    """The local backend's KMS front: checks, then moto, then CloudTrail."""

    def __init__(self, trail: CloudTrail, forward: Forward):
        self.trail = trail
        self.forward = forward
        self.seam = KeyPolicySeam()

    # --- keys ----------------------------------------------------------------------------------

    def find_key(self, key_id: str, caller_account: str, region: str) -> Key | None:
        """The key ``key_id`` names for a caller, honouring that only ARNs reach other accounts."""
        account = caller_account
        if key_id.startswith("arn:"):
            parts = key_id.split(":", 5)
            if len(parts) < 6 or parts[3] != region:
                return None
            account = parts[4]
        backend = kms_backends[account][region]
        try:
            return backend.keys.get(backend.any_id_to_key_id(key_id))
        except (KeyError, AttributeError, TypeError):
            return None

    def _key_of_ciphertext(self, blob_b64: str, caller_account: str, region: str) -> Key | None:
        try:
            key_id = _deserialize_ciphertext_blob(base64.b64decode(blob_b64)).key_id
        except Exception:
            return None
        accounts = [caller_account] + [a for a in list(kms_backends) if a != caller_account]
        for account in accounts:
            key = kms_backends[account][region].keys.get(key_id)
            if key is not None:
                return key
        return None

    def _check_usable(self, operation: str, key: Key) -> None:
        if operation not in SYMMETRIC_OPS:
            return
        state = key.key_state
        if state == "Disabled":
            raise AwsError("DisabledException", f"{key.arn} is disabled.")
        if state == "PendingDeletion":
            raise AwsError("KMSInvalidStateException", f"{key.arn} is pending deletion.")
        if state != "Enabled":
            raise AwsError("KMSInvalidStateException", f"{key.arn} is {state}.")
        if operation.startswith("GenerateDataKeyPair"):
            return
        # moto leaves KeyUsage unset when CreateKey omits it; KMS defaults it to ENCRYPT_DECRYPT.
        usage = key.key_usage or "ENCRYPT_DECRYPT"
        if key.key_spec != "SYMMETRIC_DEFAULT" or usage != "ENCRYPT_DECRYPT":
            raise AwsError(
                "InvalidKeyUsageException",
                f"{operation} needs a symmetric encryption key (KeySpec SYMMETRIC_DEFAULT, "
                f"KeyUsage ENCRYPT_DECRYPT); {key.arn} is {key.key_spec} with KeyUsage "
                f"{usage}.",
            )

    def _authorize(
        self,
        identity: Identity,
        operation: str,
        key: Key,
        encryption_context: Mapping[str, str] | None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        action = f"kms:{operation}"
        context = policy_context(identity, key, encryption_context, extra or {})
        verdict = self.seam.authorize(
            KeyAccessRequest(identity, action, key.arn, key.policy, context)
        )
        if not verdict.allowed:
            who = identity.principal
            raise AwsError(
                "AccessDeniedException",
                verdict.message
                or f"User: {who} is not authorized to perform: {action} on resource: {key.arn} "
                f"because no resource-based policy allows the {action} action",
            )

    # --- user calls over the wire --------------------------------------------------------------

    def handle(self, request: ApiRequest) -> ApiResponse:
        """Serve one KMS API request."""
        operation = request.operation
        identity = request.identity
        key: Key | None = None
        try:
            body = checked_json_input(request)
            key = self._target_key(operation, body, identity.account_id, request.region)
            owner = identity.account_id
            if key is not None:
                self._check_usable(operation, key)
                self._authorize(identity, operation, key, body.get("EncryptionContext"))
                if operation in CROSS_ACCOUNT_OPS:
                    owner = key.account_id
            # moto reads the raw body: it gets only what the checks above have seen.
            request.body = json.dumps(body).encode()
            response = _in_kms_shape(self.forward(request, owner))
        except AwsError as err:
            response = json11_error(err)
            body = body if "body" in locals() else {}
        self._record(request, operation, body, key, response)
        return response

    def _target_key(
        self, operation: str, body: Mapping[str, Any], account: str, region: str
    ) -> Key | None:
        key_id = body.get("KeyId") or body.get("DestinationKeyId")
        if isinstance(key_id, str) and key_id:
            return self.find_key(key_id, account, region)
        if operation in ("Decrypt", "ReEncrypt") and isinstance(body.get("CiphertextBlob"), str):
            key = self._key_of_ciphertext(body["CiphertextBlob"], account, region)
            if key is None:
                raise AwsError(
                    "InvalidCiphertextException",
                    "The ciphertext is not one KMS produced, or it was changed or cut short.",
                )
            return key
        return None

    def _record(
        self,
        request: ApiRequest,
        operation: str,
        body: Mapping[str, Any],
        key: Key | None,
        response: ApiResponse,
    ) -> None:
        error_code = error_message = None
        key_arn = key.arn if key is not None else None
        if response.status >= 400:
            try:
                payload = json.loads(response.body or b"{}")
            except ValueError:
                payload = {}
            error_code = str(payload.get("__type", "InternalFailure")).rsplit("#", 1)[-1]
            error_message = payload.get("message") or payload.get("Message")
        elif key_arn is None and operation == "CreateKey":
            key_arn = json.loads(response.body)["KeyMetadata"]["Arn"]
        self.trail.record_kms_call(
            identity=request.identity,
            region=request.region,
            event_name=operation,
            key_arn=key_arn,
            request_parameters=request_parameters(body),
            response_elements=None,
            error_code=error_code,
            error_message=error_message,
            source_ip=request.source_ip,
            user_agent=request.user_agent,
            request_id=request.request_id,
            additional_event_data=_event_data(operation, key, error_code is not None),
        )

    # --- calls the emulated EMR Serverless makes -------------------------------------------------

    def check_caller_key_access(
        self,
        identity: Identity,
        region: str,
        key_arn: str,
        encryption_context: Mapping[str, str] | None = None,
    ) -> None:
        """What EMR Serverless checks for its caller when work is submitted: DescribeKey (the key
        exists, is enabled and is a symmetric encryption key), then that the caller may
        GenerateDataKey and Decrypt with it through the service (no data key is made)."""
        via = identity.via_service(EMR_SERVERLESS_PRINCIPAL)
        params = {"keyId": key_arn}
        extra = {"kms:ViaService": f"emr-serverless.{region}.amazonaws.com"}
        key = self.find_key(key_arn, identity.account_id, region)
        try:
            if key is None:
                raise AwsError("NotFoundException", f"Key '{key_arn}' does not exist")
            self._authorize(via, "DescribeKey", key, None, extra)
        except AwsError as err:
            self._record_service_call(via, region, "DescribeKey", key_arn, params, err)
            raise
        self._record_service_call(via, region, "DescribeKey", key_arn, params, None)
        self._check_usable("GenerateDataKey", key)
        for operation in ("GenerateDataKey", "Decrypt"):
            self._authorize(via, operation, key, encryption_context, extra)

    def use_key_for_disks(
        self,
        *,
        account_id: str,
        region: str,
        key_arn: str,
        encryption_context: dict[str, str],
        source_arn: str,
        role_arn: str | None = None,
    ) -> None:
        """GenerateDataKey, then Decrypt, as ``emr-serverless.amazonaws.com`` does for disks.

        With ``role_arn``, the execution role then decrypts the data key as the workers would
        (an emulation assumption: AWS documents that the role needs GenerateDataKey and Decrypt,
        not which calls it makes), so a role without KMS permissions fails the work.
        """
        service = Identity.aws_service(EMR_SERVERLESS_PRINCIPAL, account_id)
        extra = {"aws:SourceArn": source_arn, "aws:SourceAccount": account_id}
        key = self.find_key(key_arn, account_id, region)
        generate = {"keyId": key_arn, "keySpec": "AES_256", "encryptionContext": encryption_context}
        try:
            if key is None:
                raise AwsError("NotFoundException", f"Key '{key_arn}' does not exist")
            self._check_usable("GenerateDataKey", key)
            self._authorize(service, "GenerateDataKey", key, encryption_context, extra)
            backend = kms_backends[key.account_id][region]
            _, blob, _ = backend.generate_data_key(key.id, encryption_context, 0, "AES_256")
        except AwsError as err:
            self._record_service_call(service, region, "GenerateDataKey", key_arn, generate, err)
            raise
        self._record_service_call(service, region, "GenerateDataKey", key_arn, generate, None, key)
        decrypt = {
            "keyId": key_arn,
            "encryptionContext": encryption_context,
            "encryptionAlgorithm": "SYMMETRIC_DEFAULT",
        }
        try:
            self._check_usable("Decrypt", key)
            self._authorize(service, "Decrypt", key, encryption_context, extra)
            backend.decrypt(blob, encryption_context)
        except AwsError as err:
            self._record_service_call(service, region, "Decrypt", key_arn, decrypt, err)
            raise
        self._record_service_call(service, region, "Decrypt", key_arn, decrypt, None, key)
        if role_arn:
            self._role_decrypts(role_arn, region, key, blob, encryption_context, decrypt)

    def _role_decrypts(
        self,
        role_arn: str,
        region: str,
        key: Key,
        blob: bytes,
        encryption_context: dict[str, str],
        params: dict[str, Any],
    ) -> None:
        account, name = role_arn.split(":")[4], role_arn.rsplit("/", 1)[-1]
        worker = Identity(
            type="AssumedRole",
            account_id=account,
            arn=f"arn:aws:sts::{account}:assumed-role/{name}/emr-serverless-worker",
            principal_id=f"AROA{account}:emr-serverless-worker",
            role_arn=role_arn,
            user_name="emr-serverless-worker",
            extra={"invokedBy": EMR_SERVERLESS_PRINCIPAL},
        )
        try:
            self._authorize(worker, "Decrypt", key, encryption_context)
            kms_backends[key.account_id][region].decrypt(blob, encryption_context)
        except AwsError as err:
            self._record_service_call(worker, region, "Decrypt", key.arn, params, err)
            raise
        self._record_service_call(worker, region, "Decrypt", key.arn, params, None, key)

    def _record_service_call(
        self,
        identity: Identity,
        region: str,
        event_name: str,
        key_arn: str,
        params: dict[str, Any],
        err: AwsError | None,
        key: Key | None = None,
    ) -> None:
        source = "AWS Internal" if identity.type == "AWSService" else EMR_SERVERLESS_PRINCIPAL
        self.trail.record_kms_call(
            identity=identity,
            region=region,
            event_name=event_name,
            key_arn=key_arn,
            request_parameters=params,
            response_elements=None,
            error_code=err.code if err else None,
            error_message=err.message if err else None,
            source_ip=source,
            user_agent=source,
            additional_event_data=_event_data(event_name, key, err is not None),
        )
