FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 BRIGHTBACK_VAR_DIR=/var/lib/brightback
WORKDIR /app
COPY pyproject.toml ./
COPY brightback_site ./brightback_site
COPY flows ./flows
COPY offers ./offers
COPY alerts ./alerts
COPY billing ./billing
COPY webhooks ./webhooks
COPY reports ./reports
COPY audiences ./audiences
COPY embeds ./embeds
COPY templates ./templates
COPY static ./static
COPY locale ./locale
COPY manage.py ./
RUN pip install --no-cache-dir -e . \
 && SECRET_KEY=build-only python manage.py collectstatic --noinput \
 && useradd --system --home /app brightback && mkdir -p $BRIGHTBACK_VAR_DIR && chown brightback $BRIGHTBACK_VAR_DIR
USER brightback
EXPOSE 8000
CMD ["gunicorn", "brightback_site.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
