"""Demo logins: one user per role, all with the password ``urja-demo``."""

from dataclasses import dataclass

DEMO_PASSWORD = "urja-demo"


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: str
    full_name: str
    office: str  # "" = none (whole utility), else an office code of the demo organisation
    mobile: str
    note: str


# Offices: CRE, engineer and billing officer at Balasore Electrical Division (BED), the field
# agent at a Balasore town section, the manager at Balasore circle, the key-account manager
# for the whole utility (so every account above 100 kW gets one), the admin everywhere.
LOGINS: tuple[DemoLogin, ...] = (
    DemoLogin("admin", "admin", "Anita Mohapatra", "", "+919437100001", "superuser; Django admin at /admin/"),
    DemoLogin("manager", "manager", "Sarat Chandra Panda", "C-BLS", "+919437100002", "Balasore circle"),
    DemoLogin("cre", "cre", "Lipsa Mohanty", "D-BED", "+919437100003", "care centre of Balasore division (BED)"),
    DemoLogin("engineer", "engineer", "Bikash Sahoo", "D-BED", "+919437100004", "Balasore division (BED)"),
    DemoLogin("billing", "billing_officer", "Smruti Ranjan Das", "D-BED", "+919437100005", "Balasore division"),
    DemoLogin("kam", "key_account_manager", "Rashmi Pattnaik", "TPNODL", "+919437100006", "all accounts > 100 kW"),
    DemoLogin("agent", "field_agent", "Pabitra Nayak", "S-BED-1A", "+919437100007", "Balasore Section I"),
    DemoLogin(
        "mgagent", "field_agent", "Basanti Murmu", "S-UDL-2A", "+919437100008", "agent of the Kaptipada mini-grid"
    ),
    DemoLogin("consumer", "consumer", "Sunita Behera", "", "+919437112233", "consumer portal; owns a Balasore home"),
)


def ensure_staff() -> dict:
    """Create the demo users (once). Returns {username: User} and, by role, {role: User} (first login
    of each role; the mini-grid agent only by its username)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    from urja.core.models import StaffProfile
    from urja.network.models import Office

    User = get_user_model()
    hashed = None
    users: dict = {}
    for login in LOGINS:
        user = User.objects.filter(username=login.username).first()
        if user is None:
            hashed = hashed or make_password(DEMO_PASSWORD)
            first, _, last = login.full_name.rpartition(" ")
            user = User.objects.create(
                username=login.username,
                password=hashed,
                first_name=first,
                last_name=last,
                email=f"{login.username}@urja.example",
                is_staff=login.role == "admin",
                is_superuser=login.role == "admin",
            )
        if not StaffProfile.objects.filter(user=user).exists():
            office = Office.objects.get(code=login.office) if login.office else None
            StaffProfile.objects.create(user=user, role=login.role, office=office, mobile=login.mobile)
        users[login.username] = user
    by_role: dict = {}
    for login in LOGINS:
        by_role.setdefault(login.role, users[login.username])
    return {**users, **by_role}
