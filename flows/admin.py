from django.contrib import admin

from .models import App, CancelSession, Decision, Event, Flow, Reason

admin.site.register([App, Flow, Reason, CancelSession, Decision, Event])
