from django.contrib import admin

from .models import Offer

admin.site.register(Offer)
