"""A one-file Django project: `python -m haywire django_app:application`."""

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    SECRET_KEY="haywire-example-not-secret",
    MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
    DATA_UPLOAD_MAX_MEMORY_SIZE=None,
)
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import JsonResponse, StreamingHttpResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402


def hello(request):
    return JsonResponse({
        "message": "Hello, World!",
        "remote_addr": request.META.get("REMOTE_ADDR"),
        "secure": request.is_secure(),
    })


@csrf_exempt
def form(request):
    return JsonResponse({"name": request.POST.get("name"), "tags": request.POST.getlist("tag")})


@csrf_exempt
def upload(request):
    upload = request.FILES["file"]
    data = upload.read()
    return JsonResponse({"name": upload.name, "size": len(data), "sum": sum(data) % 65521})


def stream(request):
    return StreamingHttpResponse((f"part{i};" for i in range(3)), content_type="text/plain")


urlpatterns = [
    path("json", hello),
    path("form", form),
    path("upload", upload),
    path("stream", stream),
]

application = get_wsgi_application()
