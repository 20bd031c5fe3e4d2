"""Platform API: tokens, the caller's profile, departments, staff, audit, integration keys."""

from __future__ import annotations

import django_filters
from django.contrib.auth import authenticate
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied, ValidationError
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from hcrm import services
from hcrm.models import AuditEntry, Department, IntegrationKey, User
from hcrm.roles import INTEGRATION_SCOPES, Role
from hcrm.selectors import audit_entries_visible_to
from hcrm.views import lockout_response


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)


class TokenView(APIView):
    """Exchange a staff username and password for an API token (repeated failures lock the account)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"

    @extend_schema(
        request=TokenRequestSerializer,
        responses=inline_serializer("TokenResponse", {"token": serializers.CharField()}),
    )
    def post(self, request):
        serializer = TokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = authenticate(request=request, **serializer.validated_data)
        if getattr(request, "axes_locked_out", False):
            # Axes marks the DRF request, which its middleware never sees: answer as the console does.
            return lockout_response(request)
        if user is None:
            raise AuthenticationFailed(_("Wrong username or password."), code="invalid_credentials")
        token, _created = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})

    @extend_schema(responses={204: None})
    def delete(self, request):
        """Revoke the token used for this request."""
        auth = getattr(request, "auth", None)
        if isinstance(auth, Token):
            auth.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    def get_authenticate_header(self, request):
        # Without an authenticator DRF would turn a wrong password into a 403.
        return "Bearer"

    def get_authenticators(self):
        if self.request is not None and self.request.method == "DELETE":
            from hcrm.rest import BearerTokenAuthentication

            return [BearerTokenAuthentication()]
        return []


class DepartmentSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)

    class Meta:
        model = Department
        fields = ["id", "code", "name", "name_en", "kind", "description", "is_active"]


class DepartmentViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Department.objects.all()
    serializer_class = DepartmentSerializer
    lookup_field = "code"
    filterset_fields = ["kind", "is_active"]
    pagination_class = None
    required_permissions = {
        "GET": [],
        "HEAD": [],
        "OPTIONS": [],
        "POST": ["hcrm.add_department"],
        "PUT": ["hcrm.change_department"],
        "PATCH": ["hcrm.change_department"],
    }


class StaffSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    roles = serializers.SerializerMethodField()
    departments = serializers.SlugRelatedField(slug_field="code", many=True, read_only=True)

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "full_name",
            "title",
            "specialties",
            "is_renowned_expert",
            "employee_number",
            "roles",
            "departments",
            "is_active",
        ]

    def get_roles(self, user) -> list[str]:
        return sorted(group.name for group in user.groups.all())


class StaffCreateSerializer(serializers.Serializer):
    username = serializers.RegexField(r"^[\w.@+-]{3,150}$")
    full_name = serializers.CharField(max_length=100)
    password = serializers.CharField(min_length=10, write_only=True, trim_whitespace=False)
    roles = serializers.ListField(child=serializers.ChoiceField(choices=Role.choices), min_length=1)
    departments = serializers.SlugRelatedField(slug_field="code", queryset=Department.objects.all(), many=True)
    title = serializers.ChoiceField(choices=User.Title.choices, required=False)
    specialties = serializers.CharField(max_length=300, required=False, allow_blank=True)


class StaffViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    """Staff directory. Administrators see everyone; department heads their departments' staff."""

    queryset = User.objects.none()
    serializer_class = StaffSerializer
    lookup_field = "uuid"
    lookup_url_kwarg = "id"
    filterset_fields = {"is_active": ["exact"], "departments__code": ["exact"], "groups__name": ["exact"]}

    def get_queryset(self):
        staff = User.objects.prefetch_related("groups", "departments").order_by("username")
        user = self.request.user
        if user.has_perm("hcrm.view_auditentry"):
            return staff
        return staff.filter(staff_departments__department_id__in=user.department_ids).distinct()

    @extend_schema(request=StaffCreateSerializer, responses={201: StaffSerializer})
    def create(self, request, *args, **kwargs):
        serializer = StaffCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        from django.contrib.auth.password_validation import validate_password
        from django.core.exceptions import ValidationError as DjangoValidationError

        try:
            validate_password(data["password"], User(username=data["username"], full_name=data["full_name"]))
        except DjangoValidationError as error:
            raise ValidationError({"password": error.messages}) from None
        user = services.staff_create(
            actor=request.user,
            username=data["username"],
            password=data["password"],
            full_name=data["full_name"],
            roles=data["roles"],
            departments=data["departments"],
            title=data.get("title", ""),
            specialties=data.get("specialties", ""),
        )
        return Response(StaffSerializer(self.get_queryset().get(pk=user.pk)).data, status=status.HTTP_201_CREATED)


class MeView(APIView):
    permission_classes = [IsAuthenticated]
    required_permissions = None

    @extend_schema(responses=StaffSerializer)
    def get(self, request):
        if not isinstance(request.user, User):
            return Response({"integration": str(request.user), "scopes": request.user.key.scopes})
        user = User.objects.prefetch_related("groups", "departments").get(pk=request.user.pk)
        return Response(StaffSerializer(user).data)


class AuditEntrySerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField()
    object_type = serializers.CharField(source="content_type.model", read_only=True)

    class Meta:
        model = AuditEntry
        fields = [
            "id",
            "timestamp",
            "event",
            "actor",
            "client",
            "remote_addr",
            "user_agent",
            "object_type",
            "object_repr",
            "patient_uuid",
            "reason",
            "changes",
            "additional_data",
        ]

    def get_actor(self, entry) -> str | None:
        return entry.actor.username if entry.actor_id else None


class AuditEntryFilter(django_filters.FilterSet):
    patient = django_filters.UUIDFilter(field_name="patient_uuid", label=_("Patient id"))
    actor = django_filters.UUIDFilter(field_name="actor__uuid", label=_("Staff member id"))
    event = django_filters.ChoiceFilter(choices=AuditEntry.Event.choices)
    since = django_filters.IsoDateTimeFilter(field_name="timestamp", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="timestamp", lookup_expr="lt")

    class Meta:
        model = AuditEntry
        fields: list[str] = []


class AuditEntryViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The audit trail: administrators see all of it; department heads their staff's activity."""

    queryset = AuditEntry.objects.none()
    serializer_class = AuditEntrySerializer
    filterset_class = AuditEntryFilter
    required_permissions = {"GET": ["hcrm.view_department_audit"]}

    def get_queryset(self):
        entries = audit_entries_visible_to(self.request.user)
        if entries is None:
            raise PermissionDenied()
        return entries


class IntegrationKeySerializer(serializers.ModelSerializer):
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=sorted(INTEGRATION_SCOPES)), min_length=1)

    class Meta:
        model = IntegrationKey
        fields = ["prefix", "name", "scopes", "source_system", "revoked", "expiry_date", "created"]
        read_only_fields = ["prefix", "revoked", "created"]


class IntegrationKeyViewSet(
    mixins.ListModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """API keys for other systems. The key itself is shown once, when it is created."""

    queryset = IntegrationKey.objects.order_by("-created")
    serializer_class = IntegrationKeySerializer
    # Keys are addressed by their public prefix; the id embeds the key's hash and stays inside.
    lookup_field = "prefix"

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key, plain = services.integration_key_create(
            actor=request.user,
            name=serializer.validated_data["name"],
            scopes=serializer.validated_data["scopes"],
            source_system=serializer.validated_data.get("source_system", ""),
        )
        return Response({**self.get_serializer(key).data, "key": plain}, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        services.integration_key_revoke(actor=self.request.user, key=instance)


def register(router) -> None:
    router.register("departments", DepartmentViewSet, basename="department")
    router.register("staff", StaffViewSet, basename="staff")
    router.register("audit", AuditEntryViewSet, basename="audit")
    router.register("integration-keys", IntegrationKeyViewSet, basename="integrationkey")
