from django.conf import settings

from hcrm.roles import Role


def console(request):
    """What every console page needs: the hospital's name and the signed-in user's role names."""
    user = getattr(request, "user", None)
    codes = user.role_codes if user is not None and user.is_authenticated and hasattr(user, "role_codes") else []
    return {"hospital_name": settings.HOSPITAL_NAME, "user_roles": [Role(code).label for code in codes]}
