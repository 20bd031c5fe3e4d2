from django.conf import settings


def console(request):
    """What every console page needs: the hospital's name and the signed-in user's roles."""
    user = getattr(request, "user", None)
    roles = user.role_codes if user is not None and user.is_authenticated and hasattr(user, "role_codes") else []
    return {"hospital_name": settings.HOSPITAL_NAME, "user_roles": roles}
