"""The Django row's one view: GET /json -> {"message": "Hello, World!"}, as TechEmpower's
JSON test, through Django's whole default middleware stack."""
from django.http import JsonResponse


def json(request):
    return JsonResponse({"message": "Hello, World!"})
